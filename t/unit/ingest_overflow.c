/*
 * Copyright (C) edgehog
 */

/*
 * The overflow token bucket (spec/ingestion.md §6, AC-22).
 */


#include <string.h>

#include "tap.h"
#include "ingest_overflow.h"


int
main(void)
{
    ingest_bucket_t  b;

    memset(&b, 0, sizeof(ingest_bucket_t));

    /* AC-22: 1500 at once do not fit a 1000 bucket, and take nothing */
    is_int(ingest_bucket_consume(&b, 1000, 1, 1000, 1500), 0,
           "1500 events overflow a fresh bucket of 1000");
    is_int(ingest_bucket_consume(&b, 1000, 1, 1000, 1000), 1,
           "the bucket kept its 1000 tokens");
    is_int(ingest_bucket_consume(&b, 1000, 1, 1000, 1), 0,
           "then it is empty");

    /* one token per second of message time */
    is_int(ingest_bucket_consume(&b, 1000, 1, 3000, 2), 1,
           "2 s later 2 tokens are back");
    is_int(ingest_bucket_consume(&b, 1000, 1, 3500, 1), 0,
           "half a token is not enough");
    is_int(ingest_bucket_consume(&b, 1000, 1, 2000, 1), 0,
           "time going backwards refills nothing");
    is_int(ingest_bucket_consume(&b, 1000, 1, 4000, 1), 1,
           "the half token from before counts");

    /* refill is capped */
    is_int(ingest_bucket_consume(&b, 1000, 1, 10000000, 1000), 1,
           "a long pause refills to capacity");
    is_int(ingest_bucket_consume(&b, 1000, 1, 10000000, 1), 0,
           "and not beyond");

    return done_testing();
}
