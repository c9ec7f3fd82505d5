/*
 * Copyright (C) edgehog
 */


#include <string.h>

#include "tap.h"
#include "eh_uuid.h"


static const char *v5(const char *ns, const char *name);
static const char *roundtrip(const char *s);


static char  t_str[EH_UUID_STR_LEN + 1];


static const char *
v5(const char *ns, const char *name)
{
    unsigned char  n[16], u[16];

    if (eh_uuid_parse(ns, strlen(ns), n) != 0) {
        return NULL;
    }

    eh_uuid_v5(n, name, strlen(name), u);
    eh_uuid_format(u, t_str);

    return t_str;
}


static const char *
roundtrip(const char *s)
{
    unsigned char  u[16];

    if (eh_uuid_parse(s, strlen(s), u) != 0) {
        return NULL;
    }

    eh_uuid_format(u, t_str);

    return t_str;
}


int
main(void)
{
    int             i;
    unsigned char   u[16], rnd[10];
    const char     *person = "932979b4-65c3-4424-8467-0b66ec27bc22";

    is_str(roundtrip("550e8400-e29b-41d4-a716-446655440000"),
           "550e8400-e29b-41d4-a716-446655440000", "hyphenated");
    is_str(roundtrip("550E8400-E29B-41D4-A716-446655440000"),
           "550e8400-e29b-41d4-a716-446655440000", "upper case");
    is_str(roundtrip("550e8400e29b41d4a716446655440000"),
           "550e8400-e29b-41d4-a716-446655440000", "simple");
    is_str(roundtrip("{550e8400-e29b-41d4-a716-446655440000}"),
           "550e8400-e29b-41d4-a716-446655440000", "braced");
    is_str(roundtrip("urn:uuid:550e8400-e29b-41d4-a716-446655440000"),
           "550e8400-e29b-41d4-a716-446655440000", "urn");
    is_str(roundtrip("00000000-0000-0000-0000-000000000000"),
           "00000000-0000-0000-0000-000000000000", "nil");
    ok(roundtrip("") == NULL, "empty");
    ok(roundtrip("not-a-uuid") == NULL, "not-a-uuid");
    ok(roundtrip("550e8400-e29b-41d4-a716-44665544000") == NULL, "short");
    ok(roundtrip("550e8400-e29b-41d4-a716-4466554400000") == NULL, "long");
    ok(roundtrip("550e8400+e29b-41d4-a716-446655440000") == NULL,
       "bad separator");
    ok(roundtrip("550e8400-e29b-41d4-a716-44665544000g") == NULL, "bad hex");
    ok(roundtrip("550e8400e29b41d4a716446655440000--") == NULL,
       "simple with junk");
    ok(roundtrip("550e-8400e29b41d4a716446655440000") == NULL,
       "misplaced hyphen");

    /* RFC 4122 appendix / Python uuid5 */
    is_str(v5("6ba7b810-9dad-11d1-80b4-00c04fd430c8", "python.org"),
           "886313e1-3b8a-5372-9b90-0c9aee199e5d", "v5 DNS python.org");

    /* spec/ingestion.md §3.2 person uuids */
    is_str(v5(person, "1:anon-1"), "cfa956a0-5af4-51c6-9ef5-cb3c80e09b69",
           "person 1:anon-1");
    is_str(v5(person, "1:user-1"), "6931a681-6e90-500d-8294-14582dcc2e3f",
           "person 1:user-1");
    is_str(v5(person, "2:new-user"), "4db89b1b-c399-51fa-adb3-df07003c84ef",
           "person 2:new-user");

    /* v7 */
    for (i = 0; i < 10; i++) {
        rnd[i] = 0xff;
    }

    eh_uuid_v7(1751367600000ULL, rnd, u);
    eh_uuid_format(u, t_str);
    is_str(t_str, "0197c5a4-c780-7fff-bfff-ffffffffffff", "v7 layout");
    is_int(u[6] >> 4, 7, "v7 version nibble");
    is_int(u[8] >> 6, 2, "v7 variant");

    memset(rnd, 0, sizeof(rnd));
    eh_uuid_v7(0xffffffffffffULL, rnd, u);
    eh_uuid_format(u, t_str);
    is_str(t_str, "ffffffff-ffff-7000-8000-000000000000", "v7 max time");

    return done_testing();
}
