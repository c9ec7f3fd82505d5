/*
 * Copyright (C) edgehog
 */

/*
 * ingest_uuid_valid (table lookups, no branch per byte) against the
 * byte loop it replaced, kept here as the reference: every byte value
 * at every position of a valid uuid, in both cases, and random strings
 * over the bytes that matter, lengths 35 to 37 included.
 */


#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "tap.h"
#include "ingest_message.h"


static int
reference_uuid_valid(const char *s, size_t len)
{
    size_t  i;

    if (len != 36) {
        return 0;
    }

    for (i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') {
                return 0;
            }

            continue;
        }

        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')
              || (s[i] >= 'A' && s[i] <= 'F')))
        {
            return 0;
        }
    }

    return 1;
}


int
main(void)
{
    int          pos, c, i, k, same, valid;
    char         buf[40];
    size_t       len;

    static const char  *bases[] = {
        "018c0b2a-0000-7000-8000-00000000000a",
        "FFFFFFFF-AAAA-BBBB-CCCC-DDDDEEEE9999",
    };
    static const char   alphabet[] = "0123456789abcdefABCDEFgG-/:@`{ \xff";

    same = 1;
    valid = 0;

    for (k = 0; k < 2; k++) {
        ok(ingest_uuid_valid(bases[k], 36), "%s is valid", bases[k]);

        for (pos = 0; pos < 36; pos++) {
            for (c = 0; c < 256; c++) {
                memcpy(buf, bases[k], 36);
                buf[pos] = (char) c;

                if (ingest_uuid_valid(buf, 36)
                    != reference_uuid_valid(buf, 36))
                {
                    diag("byte %d at %d of %s differs", c, pos, bases[k]);
                    same = 0;
                }
            }
        }
    }

    ok(same, "every byte at every position: as the byte loop");

    srand(3);

    for (i = 0; i < 500000; i++) {
        len = 35 + rand() % 3;

        for (k = 0; k < (int) len; k++) {
            /* mostly valid bytes where they belong, so some pass */
            if (rand() % 8 == 0) {
                buf[k] = alphabet[rand() % (sizeof(alphabet) - 1)];

            } else {
                buf[k] = (k == 8 || k == 13 || k == 18 || k == 23)
                         ? '-' : "0123456789abcdefABCDEF"[rand() % 22];
            }
        }

        if (ingest_uuid_valid(buf, len) != reference_uuid_valid(buf, len)) {
            diag("random string %d differs", i);
            same = 0;
            break;
        }

        valid += reference_uuid_valid(buf, len);
    }

    ok(same, "500000 random strings: as the byte loop");
    ok(valid > 1000, "and some were valid (%d)", valid);

    done_testing();
}
