/*
 * Copyright (C) edgehog
 */

/*
 * Stored data the flags module reads besides the person entry
 * (eh_person_entry.h): group properties and experience-continuity
 * hash-key overrides (spec/decide.md 3.9).
 *
 * Group entry, one per group, written by the ingestion side on
 * $groupidentify (posthog_group) and read by ngx_decide_module when a
 * flag needs stored group properties (DECIDE_NEED_GROUPS):
 *
 *     key    edgehog:group:<team_id>:<group_type_index>:<group_key>
 *            (decimal numbers, group_key raw bytes, no escaping)
 *     value  JSON object, UTF-8:
 *            {"version": <posthog_group.version>,
 *             "properties": {<posthog_group.group_properties>}}
 *
 * Unknown fields are ignored; "version" is optional.  No TTL.
 *
 * Hash-key overrides (posthog_featureflaghashkeyoverride), the serving
 * copy the module reads and writes from its thread pool:
 *
 *     key    edgehog:hko:<team_id>:<person_id>
 *     value  Redis hash {feature_flag_key: hash_key}, written with
 *            HSETNX (first write wins, like ON CONFLICT DO NOTHING)
 *
 * Every override the module creates is also pushed (RPUSH) as JSON
 *     {"team_id": .., "person_id": .., "feature_flag_key": "..",
 *      "hash_key": ".."}
 * onto the list edgehog:hko:pending, which the ingest-worker's sync
 * thread drains into Postgres (INSERT .. ON CONFLICT DO NOTHING).
 */

#ifndef _EH_GROUP_ENTRY_H_INCLUDED_
#define _EH_GROUP_ENTRY_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <jansson.h>


#define EH_GROUP_KEY_PREFIX   "edgehog:group:"
#define EH_HKO_KEY_PREFIX     "edgehog:hko:"
#define EH_HKO_PENDING_KEY    "edgehog:hko:pending"


/* like eh_person_key(): snprintf semantics, key may hold any bytes */
size_t eh_group_key(char *buf, size_t size, int64_t team_id, int gti,
    const char *group_key, size_t len);

/* malloc'd JSON text, NULL on failure; properties may be NULL */
char *eh_group_entry_encode(int64_t version, const json_t *properties);

/* the properties object (a new reference), NULL if malformed */
json_t *eh_group_entry_decode(const char *data, size_t len);

size_t eh_hko_key(char *buf, size_t size, int64_t team_id,
    int64_t person_id);

/* malloc'd JSON text for EH_HKO_PENDING_KEY, NULL on failure */
char *eh_hko_pending_encode(int64_t team_id, int64_t person_id,
    const char *flag_key, const char *hash_key, size_t hash_key_len);


#endif /* _EH_GROUP_ENTRY_H_INCLUDED_ */
