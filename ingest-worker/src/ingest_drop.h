/*
 * Copyright (C) edgehog
 */

/*
 * §1.4 (G3 drop-old-events-step): a team's drop_events_older_than_seconds
 * drops events whose timestamp is older than that, with the debounced
 * warning event_dropped_too_old.  Pure C.
 */

#ifndef _INGEST_DROP_H_INCLUDED_
#define _INGEST_DROP_H_INCLUDED_


#include <stdint.h>
#include <jansson.h>


/* 1 if the event must be dropped; threshold_s <= 0 means never */
int ingest_drop_too_old(int64_t event_ts_us, int64_t now_us,
    int64_t threshold_s);

/*
 * The warning's details {eventUuid, event, distinctId, eventTimestamp
 * (ISO 8601, ms), ageInSeconds, dropThresholdSeconds}; NULL on ENOMEM.
 */
json_t *ingest_drop_details(const char *uuid, const char *event,
    const char *distinct_id, int64_t event_ts_us, int64_t now_us,
    int64_t threshold_s);


#endif /* _INGEST_DROP_H_INCLUDED_ */
