/*
 * Copyright (C) edgehog
 */

/*
 * The Redis entry of one person as the flags module sees it, written by
 * the ingest-worker on every person create, update and merge (for every
 * distinct id of the person) and read by ngx_decide_module when a flag
 * needs stored person properties.
 *
 *     key    edgehog:person:<team_id>:<distinct_id>
 *            (team_id decimal, distinct_id raw bytes, no escaping)
 *     value  JSON object, UTF-8:
 *            {"id": <posthog_person.id>, "uuid": "<person uuid>",
 *             "version": <posthog_person.version>,
 *             "properties": {<posthog_person.properties>}}
 *
 * "id" lets the module check static cohort membership against the
 * snapshot; "version" lets a writer skip stale updates.  Unknown fields
 * are ignored by the reader, so the format may grow.  A deleted person
 * or a distinct id moved to another person is handled by deleting or
 * overwriting the key.  No TTL.
 */

#ifndef _EH_PERSON_ENTRY_H_INCLUDED_
#define _EH_PERSON_ENTRY_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <jansson.h>


#define EH_PERSON_KEY_PREFIX  "edgehog:person:"


typedef struct {
    int64_t      id;            /* posthog_person.id, 0 if unknown */
    int64_t      version;
    char         uuid[40];      /* "" if absent */
    json_t      *properties;    /* owned reference, always an object */
} eh_person_entry_t;


/*
 * Writes the key (NUL-terminated when it fits) and returns its length
 * without the NUL, like snprintf; distinct_id may contain any bytes.
 */
size_t eh_person_key(char *buf, size_t size, int64_t team_id,
    const char *distinct_id, size_t len);

/*
 * Appends raw bytes to a key whose first n bytes snprintf() wrote; the
 * same truncation and return value as eh_person_key().  Shared by the
 * other entry formats (eh_group_entry.h).
 */
size_t eh_entry_key_append(char *buf, size_t size, int n, const char *tail,
    size_t len);

/* malloc'd NUL-terminated JSON text, NULL on failure; properties may be NULL */
char *eh_person_entry_encode(int64_t id, const char *uuid, int64_t version,
    const json_t *properties);

/* 0 on success (entry->properties must be json_decref'd), -1 if malformed */
int eh_person_entry_decode(const char *data, size_t len,
    eh_person_entry_t *entry);

void eh_person_entry_free(eh_person_entry_t *entry);


#endif /* _EH_PERSON_ENTRY_H_INCLUDED_ */
