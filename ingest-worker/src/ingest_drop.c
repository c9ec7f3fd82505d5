/*
 * Copyright (C) edgehog
 */


#include "eh_time.h"
#include "ingest_drop.h"


int
ingest_drop_too_old(int64_t event_ts_us, int64_t now_us, int64_t threshold_s)
{
    if (threshold_s <= 0) {
        return 0;
    }

    return now_us - event_ts_us > threshold_s * 1000000;
}


json_t *
ingest_drop_details(const char *uuid, const char *event,
    const char *distinct_id, int64_t event_ts_us, int64_t now_us,
    int64_t threshold_s)
{
    char  iso[EH_TIME_STR_MAX];

    eh_time_format_iso_ms(event_ts_us, iso);

    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}",
                     "eventUuid", uuid, "event", event,
                     "distinctId", distinct_id, "eventTimestamp", iso,
                     "ageInSeconds",
                     (json_int_t) ((now_us - event_ts_us) / 1000000),
                     "dropThresholdSeconds", (json_int_t) threshold_s);
}
