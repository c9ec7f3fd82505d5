/*
 * Copyright (C) edgehog
 */

/*
 * UUID helpers shared by the capture module and the ingest-worker:
 * parsing any RFC 4122 text form, canonical formatting, UUIDv7 for
 * events without one (capture) and UUIDv5 for person ids (ingestion).
 */

#ifndef _EH_UUID_H_INCLUDED_
#define _EH_UUID_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


#define EH_UUID_STR_LEN  36


/* 0 on success; accepts hyphenated and simple forms, any case */
int eh_uuid_parse(const char *s, size_t len, unsigned char out[16]);

/* writes 36 lower-case hex chars plus NUL */
void eh_uuid_format(const unsigned char u[16], char out[EH_UUID_STR_LEN + 1]);

/* ms: unix milliseconds; rnd: 10 random bytes supplied by the caller */
void eh_uuid_v7(uint64_t ms, const unsigned char rnd[10], unsigned char out[16]);

/* RFC 4122 name-based (SHA-1) UUID */
void eh_uuid_v5(const unsigned char ns[16], const char *name, size_t len,
    unsigned char out[16]);


#endif /* _EH_UUID_H_INCLUDED_ */
