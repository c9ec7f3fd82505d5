/*
 * Copyright (C) edgehog
 */


#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "eh_snapshot.h"


int
main(void)
{
    int      i;
    char     err[128], *p;
    size_t   len;
    json_t  *doc, *back, *deep;

    doc = json_loads("{\"format\":1,\"version\":7,"
                     "\"team\":{\"id\":3,\"api_token\":\"phc_x\","
                     "\"autocapture_opt_out\":null,\"rate\":0.5},"
                     "\"flags\":[{\"id\":1,\"key\":\"f\",\"filters\":"
                     "{\"groups\":[{\"properties\":[],"
                     "\"rollout_percentage\":45.5}]},\"active\":true,"
                     "\"deleted\":false,\"big\":-9223372036854775807}],"
                     "\"cohorts\":[],\"group_type_mapping\":{\"0\":\"org\"},"
                     "\"unicode\":\"\\u00e9\\u4e2d\"}", 0, NULL);
    ok(doc != NULL, "fixture parses");

    p = eh_snapshot_encode(doc, &len);
    ok(p != NULL && len > 0, "encode");

    back = eh_snapshot_decode(p, len, err, sizeof(err));
    ok(back != NULL, "decode");
    ok(json_equal(doc, back), "round trip is lossless");
    ok(json_is_real(json_object_get(json_object_get(back, "team"), "rate")),
       "reals stay reals");
    json_decref(back);

    ok(eh_snapshot_decode(p, len - 1, err, sizeof(err)) == NULL,
       "truncated refused");
    diag("%s", err);

    p = realloc(p, len + 1);
    p[len] = (char) 0xc0;
    ok(eh_snapshot_decode(p, len + 1, err, sizeof(err)) == NULL,
       "trailing bytes refused");
    free(p);
    json_decref(doc);

    /* {1: 2}: a non-string map key */
    ok(eh_snapshot_decode("\x81\x01\x02", 3, err, sizeof(err)) == NULL,
       "integer key refused");
    ok(eh_snapshot_decode("", 0, err, sizeof(err)) == NULL, "empty refused");

    deep = json_array();
    doc = deep;
    for (i = 0; i < EH_SNAPSHOT_DEPTH_MAX + 5; i++) {
        json_t  *a = json_array();
        json_array_append_new(deep, a);
        deep = a;
    }
    ok(eh_snapshot_encode(doc, &len) == NULL, "deep nesting refused");
    json_decref(doc);

    doc = json_null();
    p = eh_snapshot_encode(doc, &len);
    back = eh_snapshot_decode(p, len, err, sizeof(err));
    ok(json_is_null(back), "null round trip");
    free(p);

    return done_testing();
}
