/*
 * Copyright (C) edgehog
 */

/*
 * §3.4 size limit (G3): a person whose stored properties are already
 * over check_properties_size cannot take any update, so the update is
 * retried with the properties trimmed to about 512 KiB, deleting
 * trimmable keys in sorted order.  Pure C.
 *
 * Protected (never trimmed), our reading of PostHog's canTrimProperty():
 * "email", "name", "$creator_event_uuid", every "$initial_*" key, and
 * every key this event sets, so the update that triggered the trim is
 * not itself thrown away.
 */

#ifndef _INGEST_TRIM_H_INCLUDED_
#define _INGEST_TRIM_H_INCLUDED_


#include <stddef.h>
#include <jansson.h>

#include "ingest_props.h"


/* posthog_person check_properties_size: pg_column_size(properties) */
#define INGEST_PERSON_PROPERTIES_LIMIT   655360
/* what a trim aims at, in bytes of compact JSON */
#define INGEST_PERSON_TRIM_TARGET        524288


int ingest_props_can_trim(const char *key, const ingest_props_ops_t *ops);

/*
 * Deletes trimmable keys of props in byte order of their names until
 * its compact JSON is at most target bytes (or nothing trimmable is
 * left).  Returns the number of keys deleted, -1 on ENOMEM.
 */
long ingest_props_trim(json_t *props, const ingest_props_ops_t *ops,
    size_t target);


#endif /* _INGEST_TRIM_H_INCLUDED_ */
