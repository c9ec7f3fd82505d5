/*
 * Copyright (C) edgehog
 */

/*
 * person.c's hook into the §3.4 size limit handling (person_trim.c):
 * after an UPDATE failed, is the stored row itself oversized, and if so
 * trim the new properties so the update can be retried.
 */

#ifndef _WORKER_PERSON_TRIM_H_INCLUDED_
#define _WORKER_PERSON_TRIM_H_INCLUDED_


#include <stdint.h>
#include <libpq-fe.h>
#include <jansson.h>

#include "ingest_props.h"


/* 1: props trimmed, retry the update; 0: nothing to do (reject) */
int worker_person_trim(PGconn *conn, int64_t person_id, int64_t team_id,
    json_t *props, const ingest_props_ops_t *ops);


#endif /* _WORKER_PERSON_TRIM_H_INCLUDED_ */
