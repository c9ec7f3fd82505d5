/*
 * Copyright (C) edgehog
 */


#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "eh_group_entry.h"


int
main(void)
{
    char     key[64], *s;
    size_t   n;
    json_t  *props, *p;

    n = eh_group_key(key, sizeof(key), 42, 0, "acme", 4);
    is_str(key, "edgehog:group:42:0:acme", "group key format");
    is_int(n, 23, "group key length");

    n = eh_group_key(key, 10, 42, 3, "acme", 4);
    is_int(n, 23, "truncated group key reports full length");
    is_str(key, "edgehog:g", "truncated group key is terminated");

    props = json_pack("{s:i}", "size", 500);
    s = eh_group_entry_encode(2, props);
    ok(s != NULL, "encode");

    p = eh_group_entry_decode(s, strlen(s));
    ok(json_is_object(p), "decode");
    is_int(json_integer_value(json_object_get(p, "size")), 500, "property");
    json_decref(p);
    free(s);
    json_decref(props);

    p = eh_group_entry_decode("{}", 2);
    ok(json_is_object(p) && json_object_size(p) == 0, "no properties: {}");
    json_decref(p);

    ok(eh_group_entry_decode("{", 1) == NULL, "malformed");
    ok(eh_group_entry_decode("{\"properties\": 3}", 17) == NULL,
       "properties not an object");

    n = eh_hko_key(key, sizeof(key), 5, 77);
    is_str(key, "edgehog:hko:5:77", "override key format");
    is_int(n, 16, "override key length");

    s = eh_hko_pending_encode(5, 77, "ec-flag", "anon-1", 6);
    ok(s != NULL, "pending encode");
    p = json_loads(s, 0, NULL);
    is_str(json_string_value(json_object_get(p, "hash_key")), "anon-1",
           "pending hash key");
    is_int(json_integer_value(json_object_get(p, "person_id")), 77,
           "pending person id");
    json_decref(p);
    free(s);

    done_testing();
}
