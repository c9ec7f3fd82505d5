/*
 * Copyright (C) edgehog
 */


#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "eh_person_entry.h"


int
main(void)
{
    char               key[64], *s;
    size_t             n;
    json_t            *props;
    eh_person_entry_t  e;

    n = eh_person_key(key, sizeof(key), 42, "user-1", 6);
    is_str(key, "edgehog:person:42:user-1", "key format");
    is_int(n, 24, "key length");

    n = eh_person_key(key, sizeof(key), 7, "a\0b", 3);
    is_int(n, 20, "key with NUL byte length");
    ok(memcmp(key, "edgehog:person:7:a\0b", 21) == 0, "NUL byte kept");

    n = eh_person_key(key, 10, 42, "user-1", 6);
    is_int(n, 24, "truncated key reports full length");
    is_str(key, "edgehog:p", "truncated key is terminated");

    props = json_pack("{s:s, s:i}", "plan", "enterprise", "age", 30);
    s = eh_person_entry_encode(17, "0190a4f0-0000-5000-8000-000000000001",
                               3, props);
    ok(s != NULL, "encode");
    ok(strstr(s, "\"id\":17") != NULL, "encode compact id");

    ok(eh_person_entry_decode(s, strlen(s), &e) == 0, "decode");
    is_int(e.id, 17, "id");
    is_int(e.version, 3, "version");
    is_str(e.uuid, "0190a4f0-0000-5000-8000-000000000001", "uuid");
    ok(json_equal(e.properties, props), "properties round trip");
    eh_person_entry_free(&e);
    free(s);
    json_decref(props);

    s = eh_person_entry_encode(1, NULL, 0, NULL);
    ok(eh_person_entry_decode(s, strlen(s), &e) == 0, "empty entry");
    ok(json_object_size(e.properties) == 0, "empty properties object");
    is_str(e.uuid, "", "empty uuid");
    eh_person_entry_free(&e);
    free(s);

    ok(eh_person_entry_decode("{\"properties\":{\"a\":1}}", 22, &e) == 0,
       "only properties");
    is_int(json_integer_value(json_object_get(e.properties, "a")), 1,
           "property value");
    eh_person_entry_free(&e);

    ok(eh_person_entry_decode("[1]", 3, &e) == -1, "array rejected");
    ok(eh_person_entry_decode("{\"properties\":1}", 16, &e) == -1,
       "non-object properties rejected");
    ok(eh_person_entry_decode("{", 1, &e) == -1, "truncated rejected");
    ok(eh_person_entry_decode("", 0, &e) == -1, "empty rejected");

    return done_testing();
}
