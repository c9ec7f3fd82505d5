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
 *     edgehog:snapshot:teams            hash: api token -> etag, the hex
 *                                       SHA-1 of that team's msgpack
 *     edgehog:snapshot:team:<token>     string: msgpack of the document
 *
 * The document, a msgpack map (written from and read into jansson):
 *
 *     {"format": 1,
 *      "team": {the posthog_team row by column names (id, project_id,
 *               api_token, timezone, config columns), without the
 *               secret tokens},
 *      "flags": [posthog_featureflag rows of the project, active and not
 *                deleted: id, team_id, key, name, filters, active,
 *                deleted, version, ensure_experience_continuity,
 *                evaluation_runtime, bucketing_identifier,
 *                evaluation_tags: [tag names] or null],
 *      "cohorts": [posthog_cohort rows of the project, not deleted: id,
 *                  name, filters, groups, is_static, version, and
 *                  "people": [posthog_person ids] for static ones],
 *      "group_type_mapping": {"<index>": "<group type>"}}
 *
 * A publish that changes a team's etag runs MULTI; SET team key; HSET
 * teams token etag; INCR version; EXEC.  An unchanged document is not
 * written again.  A team gone from Postgres is HDEL'd, its key deleted
 * and the version INCR'd.  A reader GETs the version and, when it moved,
 * HGETALLs the hash and GETs only the teams whose etag it lacks.
 * Readers ignore unknown fields.
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
