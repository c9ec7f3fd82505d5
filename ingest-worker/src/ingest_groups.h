/*
 * Copyright (C) edgehog
 */

/*
 * Groups (spec/ingestion.md §3.9): what a $groupidentify event asks
 * for, how $group_set changes stored group properties, and the
 * clickhouse_groups row.  Pure C, like the other ingest_* units; the
 * Postgres and Redis side is groups.c.
 */

#ifndef _INGEST_GROUPS_H_INCLUDED_
#define _INGEST_GROUPS_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <jansson.h>


/* PostHog's MAX_GROUP_TYPES_PER_TEAM: indexes 0..4, $group_0..$group_4 */
#define INGEST_GROUP_TYPES_MAX  5


typedef struct {
    char                       *type;       /* String($group_type) */
    char                       *key;        /* String($group_key) */
    json_t                     *set;        /* $group_set, a new reference */
} ingest_group_ident_t;


/*
 * Reads $group_type, $group_key and $group_set from the properties of a
 * $groupidentify event.  PostHog's upsertGroup() does nothing unless
 * type and key are truthy; both are stringified, a $group_set that is
 * not an object counts as {}.  Returns 0 (fill g, free with
 * ingest_group_ident_free()), 1 when there is nothing to do, -1 on
 * ENOMEM.
 */
int ingest_group_identify(json_t *properties, ingest_group_ident_t *g);
void ingest_group_ident_free(ingest_group_ident_t *g);

/*
 * calculateUpdate(): every key of set whose value differs in the
 * JavaScript !== sense (objects and arrays always differ) is written
 * into props.  Returns 1 if props changed, 0 if not, -1 on ENOMEM.
 */
int ingest_group_props_update(json_t *props, json_t *set);

/*
 * The clickhouse_groups value {group_type_index, group_key, team_id,
 * group_properties (JSON text), created_at (ClickHouse format, ms),
 * version}; malloc()ed valid UTF-8, NULL on ENOMEM or a bad index.
 */
char *ingest_output_group(int64_t team_id, int group_type_index,
    const char *group_key, json_t *properties, int64_t created_at_us,
    int64_t version, size_t *len);


#endif /* _INGEST_GROUPS_H_INCLUDED_ */
