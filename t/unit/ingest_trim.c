/*
 * Copyright (C) edgehog
 */

/*
 * §3.4 trimming of person properties stored over the size limit
 * (ingest_trim.h): sorted order, protected keys, the target size.
 */


#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "tap.h"
#include "ingest_trim.h"


static json_t *js(const char *text);
static size_t size_of(json_t *v);


static json_t *
js(const char *text)
{
    json_error_t  err;

    return json_loads(text, 0, &err);
}


static size_t
size_of(json_t *v)
{
    char    *s;
    size_t   n;

    s = json_dumps(v, JSON_COMPACT);
    n = strlen(s);
    free(s);

    return n;
}


int
main(void)
{
    char                *pad, *s;
    json_t              *p, *ops_src;
    ingest_props_ops_t   ops;

    ops_src = js("{\"$set\":{\"plan\":\"pro\"},\"$set_once\":{\"first\":1}}");
    ingest_props_ops(ops_src, &ops);

    ok(!ingest_props_can_trim("email", &ops), "email protected");
    ok(!ingest_props_can_trim("name", &ops), "name protected");
    ok(!ingest_props_can_trim("$creator_event_uuid", &ops),
       "$creator_event_uuid protected");
    ok(!ingest_props_can_trim("$initial_browser", &ops), "$initial_*");
    ok(!ingest_props_can_trim("plan", &ops), "the event's $set key");
    ok(!ingest_props_can_trim("first", &ops), "the event's $set_once key");
    ok(ingest_props_can_trim("other", &ops), "anything else");
    ok(ingest_props_can_trim("plan", NULL), "no ops: plan is trimmable");

    pad = malloc(1001);
    memset(pad, 'x', 1000);
    pad[1000] = '\0';

    p = json_object();
    json_object_set_new(p, "zz", json_string(pad));
    json_object_set_new(p, "b", json_string(pad));
    json_object_set_new(p, "email", json_string(pad));
    json_object_set_new(p, "plan", json_string(pad));
    json_object_set_new(p, "a", json_string(pad));
    json_object_set_new(p, "c", json_integer(1));

    is_int(ingest_props_trim(p, &ops, 100000), 0, "under target: nothing");
    is_int(json_object_size(p), 6, "all kept");

    /* 6 members of ~1 KB: to get under 3.5 KB, "a" and "b" go first */
    is_int(ingest_props_trim(p, &ops, 3500), 2, "two keys trimmed");
    s = json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS);
    ok(strstr(s, "\"a\"") == NULL && strstr(s, "\"b\"") == NULL,
       "a and b gone, in sorted order");
    ok(json_object_get(p, "zz") && json_object_get(p, "c"),
       "later keys kept");
    ok(size_of(p) <= 3500, "at most the target");
    free(s);

    /* nothing trimmable is left beyond c and zz */
    is_int(ingest_props_trim(p, &ops, 10), 2, "c and zz trimmed");
    ok(json_object_get(p, "email") && json_object_get(p, "plan"),
       "protected keys survive a target they cannot meet");
    ok(size_of(p) > 10, "still over: nothing else may go");

    json_decref(p);
    json_decref(ops_src);
    free(pad);

    return done_testing();
}
