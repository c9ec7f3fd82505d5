/*
 * Copyright (C) edgehog
 */

/*
 * libFuzzer target: arbitrary bytes through the JSON text repair of
 * ingest_unicode.h and the loader that uses it.  A repaired text must be
 * valid UTF-8 without NUL, have its length, and need no second repair.
 */


#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "ingest_json.h"
#include "ingest_unicode.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char    *t, *again;
    size_t   n, m;
    json_t  *v;

    t = ingest_json_repair((const char *) data, size, &n);

    if (t != NULL) {
        if (strlen(t) != n || !ingest_utf8_valid(t, n)) {
            abort();
        }

        again = ingest_json_repair(t, n, &m);
        if (again != NULL) {
            abort();
        }

        free(t);
    }

    v = ingest_json_loadb((const char *) data, size);
    json_decref(v);

    return 0;
}
