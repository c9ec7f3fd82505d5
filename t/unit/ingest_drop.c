/*
 * Copyright (C) edgehog
 */

/* §1.4 drop_events_older_than_seconds (ingest_drop.h) */


#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "tap.h"
#include "ingest_drop.h"


int
main(void)
{
    char     *s;
    json_t   *d;
    int64_t   now;

    /* 2024-01-01T10:00:00Z */
    now = 1704103200LL * 1000000;

    ok(!ingest_drop_too_old(0, now, 0), "threshold 0: never");
    ok(!ingest_drop_too_old(0, now, -5), "negative: never");
    ok(!ingest_drop_too_old(now - 3600LL * 1000000, now, 3600),
       "exactly the threshold: kept");
    ok(ingest_drop_too_old(now - 3600LL * 1000000 - 1, now, 3600),
       "a microsecond older: dropped");
    ok(!ingest_drop_too_old(now + 1000000, now, 1), "future: kept");

    d = ingest_drop_details("u", "e", "d", now - 7200LL * 1000000, now,
                            3600);
    s = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
    is_str(s, "{\"ageInSeconds\":7200,\"distinctId\":\"d\","
              "\"dropThresholdSeconds\":3600,\"event\":\"e\","
              "\"eventTimestamp\":\"2024-01-01T08:00:00.000Z\","
              "\"eventUuid\":\"u\"}", "warning details");
    free(s);
    json_decref(d);

    return done_testing();
}
