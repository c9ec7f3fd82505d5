/*
 * Copyright (C) edgehog
 */

/*
 * Groups (spec/ingestion.md §3.9): $groupidentify parsing, $group_set
 * semantics and the clickhouse_groups row.
 */


#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "tap.h"
#include "ingest_groups.h"


static json_t *js(const char *text);
static void test_identify(void);
static void test_update(void);
static void test_output(void);


static json_t *
js(const char *text)
{
    json_error_t  err;

    return json_loads(text, 0, &err);
}


static void
test_identify(void)
{
    json_t                *p;
    char                  *s;
    ingest_group_ident_t   g;

    p = js("{\"$group_type\":\"company\",\"$group_key\":\"acme\","
           "\"$group_set\":{\"size\":5}}");
    is_int(ingest_group_identify(p, &g), 0, "identify: type and key");
    is_str(g.type, "company", "type");
    is_str(g.key, "acme", "key");
    s = json_dumps(g.set, JSON_COMPACT);
    is_str(s, "{\"size\":5}", "$group_set");
    free(s);
    ingest_group_ident_free(&g);
    json_decref(p);

    /* upsertGroup(): groupKey.toString(), non-object $group_set is {} */
    p = js("{\"$group_type\":\"org\",\"$group_key\":42,"
           "\"$group_set\":[1,2]}");
    is_int(ingest_group_identify(p, &g), 0, "numeric key");
    is_str(g.key, "42", "numeric key stringified");
    is_int(json_object_size(g.set), 0, "array $group_set counts as {}");
    ingest_group_ident_free(&g);
    json_decref(p);

    p = js("{\"$group_type\":\"org\",\"$group_key\":1.5}");
    is_int(ingest_group_identify(p, &g), 0, "real key");
    is_str(g.key, "1.5", "real key as JavaScript prints it");
    ingest_group_ident_free(&g);
    json_decref(p);

    /* falsy type or key: nothing to do */
    p = js("{\"$group_type\":\"org\",\"$group_key\":\"\"}");
    is_int(ingest_group_identify(p, &g), 1, "empty key ignored");
    json_decref(p);

    p = js("{\"$group_type\":\"org\",\"$group_key\":0}");
    is_int(ingest_group_identify(p, &g), 1, "key 0 is falsy");
    json_decref(p);

    p = js("{\"$group_key\":\"acme\"}");
    is_int(ingest_group_identify(p, &g), 1, "missing type ignored");
    json_decref(p);

    p = js("{\"$group_type\":null,\"$group_key\":\"acme\"}");
    is_int(ingest_group_identify(p, &g), 1, "null type ignored");
    json_decref(p);
}


static void
test_update(void)
{
    char    *s;
    json_t  *props, *set;

    props = js("{\"a\":1,\"b\":\"x\",\"o\":{\"k\":1}}");

    set = js("{\"a\":1,\"b\":\"x\"}");
    is_int(ingest_group_props_update(props, set), 0, "same values: none");
    json_decref(set);

    set = js("{\"a\":1.0}");
    is_int(ingest_group_props_update(props, set), 0, "1 === 1.0");
    json_decref(set);

    set = js("{\"o\":{\"k\":1}}");
    is_int(ingest_group_props_update(props, set), 1,
           "objects always differ (!==)");
    json_decref(set);

    set = js("{\"b\":\"y\",\"c\":null}");
    is_int(ingest_group_props_update(props, set), 1, "changed and new");
    json_decref(set);

    s = json_dumps(props, JSON_COMPACT);
    is_str(s, "{\"a\":1,\"b\":\"y\",\"o\":{\"k\":1},\"c\":null}",
           "group properties after $group_set");
    free(s);

    set = js("{}");
    is_int(ingest_group_props_update(props, set), 0, "empty set");
    json_decref(set);

    json_decref(props);
}


static void
test_output(void)
{
    char    *row;
    size_t   len;
    json_t  *props, *v;

    props = js("{\"name\":\"Acme \\u00e9\"}");

    /* 2024-01-01T10:00:00.123456Z */
    row = ingest_output_group(7, 2, "acme", props, 1704103200123456LL, 3,
                              &len);
    ok(row != NULL && strlen(row) == len, "row built");
    v = json_loads(row, 0, NULL);
    is_int(json_integer_value(json_object_get(v, "group_type_index")), 2,
           "group_type_index");
    is_str(json_string_value(json_object_get(v, "group_key")), "acme",
           "group_key");
    is_int(json_integer_value(json_object_get(v, "team_id")), 7, "team_id");
    is_int(json_integer_value(json_object_get(v, "version")), 3, "version");
    is_str(json_string_value(json_object_get(v, "created_at")),
           "2024-01-01 10:00:00.123", "created_at, ClickHouse format");
    is_str(json_string_value(json_object_get(v, "group_properties")),
           "{\"name\":\"Acme \xc3\xa9\"}", "group_properties JSON text");
    json_decref(v);
    free(row);

    /* invalid UTF-8 from elsewhere never reaches ClickHouse */
    row = ingest_output_group(7, 0, "a\xff", NULL, 0, 1, &len);
    v = row ? json_loads(row, 0, NULL) : NULL;
    is_str(json_string_value(json_object_get(v, "group_key")),
           "a\xef\xbf\xbd", "bad byte repaired");
    is_str(json_string_value(json_object_get(v, "group_properties")),
           "{}", "no properties: {}");
    json_decref(v);
    free(row);

    ok(ingest_output_group(7, 5, "k", props, 0, 1, &len) == NULL,
       "index 5 refused");
    ok(ingest_output_group(7, -1, "k", props, 0, 1, &len) == NULL,
       "index -1 refused");

    json_decref(props);
}


int
main(void)
{
    test_identify();
    test_update();
    test_output();

    return done_testing();
}
