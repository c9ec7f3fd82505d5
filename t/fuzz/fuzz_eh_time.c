/*
 * Copyright (C) edgehog
 */

/*
 * Parses with both flag sets; whatever parses must format and parse back
 * to the same instant.  The resolvers get the input split in two.
 */


#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eh_time.h"
#include "eh_uuid.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
static void fz_roundtrip(int64_t us);


static void
fz_roundtrip(int64_t us)
{
    char     buf[EH_TIME_STR_MAX];
    int64_t  back;
    size_t   n;

    n = eh_time_format_now(us, buf);

    if (n >= EH_TIME_STR_MAX || strlen(buf) != n) {
        abort();
    }

    if (eh_time_year(us) >= 0 && eh_time_year(us) <= 9999) {
        if (eh_time_parse(buf, n, 0, &back) != 0 || back != us) {
            abort();
        }

        n = eh_time_format_sent_at(us, buf);
        if (eh_time_parse(buf, n, 0, &back) != 0 || back != us) {
            abort();
        }
    }

    (void) eh_time_format_iso_ms(us, buf);
    (void) eh_time_format_ch_ms(us, buf);
    (void) eh_time_format_ch(us, buf);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t                 half;
    int64_t                us;
    unsigned char          u[16];
    char                   ustr[EH_UUID_STR_LEN + 1];
    eh_time_resolve_in_t   in;
    eh_time_resolve_out_t  out;

    if (eh_time_parse((const char *) data, size, EH_TIME_PARSE_CAPTURE, &us)
        == 0)
    {
        fz_roundtrip(us);
    }

    if (eh_time_parse((const char *) data, size, EH_TIME_PARSE_INGEST, &us)
        == 0)
    {
        fz_roundtrip(us);
    }

    if (eh_uuid_parse((const char *) data, size, u) == 0) {
        eh_uuid_format(u, ustr);
        if (strlen(ustr) != EH_UUID_STR_LEN) {
            abort();
        }
    }

    half = size / 2;

    memset(&in, 0, sizeof(in));
    in.now = 1751367600000000LL;
    in.wall_clock = 1597194120000000LL;
    in.timestamp = (const char *) data;
    in.timestamp_len = half;
    in.sent_at = (const char *) data + half;
    in.sent_at_len = size - half;

    if (size >= 8) {
        memcpy(&in.offset_ms, data, 8);
        in.has_offset = data[size - 1] & 1;
        in.ignore_sent_at = (data[size - 1] >> 1) & 1;
    }

    eh_time_capture_resolve(&in, &out);
    if (out.result != 0 && (eh_time_year(out.result) < 0
                            || eh_time_year(out.result) > 9999))
    {
        abort();
    }

    eh_time_ingest_resolve(&in, &out);
    if (eh_time_year(out.result) < 0 || eh_time_year(out.result) > 9999) {
        abort();
    }

    eh_time_ingest_check((const char *) data, size, in.wall_clock, &out);

    return 0;
}
