/*
 * Copyright (C) edgehog
 */

/*
 * Per-team flag snapshots in Redis, written by the ingest-worker
 * (sync.c) and read by every nginx worker (ngx_http_decide_cache.c).
 *
 *     edgehog:snapshot:version          string, decimal; INCR on every
 *                                       publish, so one GET tells a
 *                                       reader whether anything changed
 *     edgehog:snapshot:teams            hash: api token -> decimal team
 *                                       snapshot version
 *     edgehog:snapshot:team:<token>     string: msgpack of the document
 *
 * The document, a msgpack map (written from and read into jansson):
 *
 *     {"format": 1, "version": <team snapshot version>,
 *      "team": {"id", "project_id", "api_token", "timezone", and the
 *               posthog_team config columns by their column names},
 *      "flags": [posthog_featureflag rows of the project, active and not
 *                deleted: id, key, name, filters, active, deleted,
 *                version, ensure_experience_continuity,
 *                evaluation_runtime, bucketing_identifier],
 *      "cohorts": [posthog_cohort rows, not deleted: id, name, filters,
 *                  is_static, "people": [person ids] for static ones],
 *      "group_type_mapping": {"<index>": "<group type>"}}
 *
 * A publish writes the team key, then HSETs the hash, then INCRs the
 * version in one MULTI/EXEC; a removed team is HDEL'd and its key
 * deleted.  Readers ignore unknown fields.
 */

#ifndef _EH_SNAPSHOT_H_INCLUDED_
#define _EH_SNAPSHOT_H_INCLUDED_


#include <stddef.h>
#include <jansson.h>


#define EH_SNAPSHOT_FORMAT       1
#define EH_SNAPSHOT_VERSION_KEY  "edgehog:snapshot:version"
#define EH_SNAPSHOT_TEAMS_KEY    "edgehog:snapshot:teams"
#define EH_SNAPSHOT_TEAM_PREFIX  "edgehog:snapshot:team:"

/* nesting beyond this is refused both ways */
#define EH_SNAPSHOT_DEPTH_MAX    64


/* msgpack of any JSON value; malloc'd, NULL on failure */
char *eh_snapshot_encode(const json_t *doc, size_t *len);

/* the JSON value of a msgpack buffer; NULL and a message on failure */
json_t *eh_snapshot_decode(const char *data, size_t len, char *err,
    size_t errlen);


#endif /* _EH_SNAPSHOT_H_INCLUDED_ */
