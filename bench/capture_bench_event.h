/*
 * bench-capture's single event (bench/capture.py), for the pure-C
 * benches of the capture builder
 */

#ifndef _CAPTURE_BENCH_EVENT_H_INCLUDED_
#define _CAPTURE_BENCH_EVENT_H_INCLUDED_


#define BENCH_PROPS                                                          \
    "\"properties\":{\"token\":\"phc_bench_token\",\"$current_url\":"        \
    "\"https://example.com/some/page?q=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"   \
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"  \
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"  \
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"  \
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"  \
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"  \
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"  \
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"  \
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"  \
    "xxxxxxxxxxxxxxxxxxxxxxxx\",\"$browser\":\"Firefox\",\"$os\":\"Linux\"," \
    "\"$screen_height\":1080,\"$screen_width\":1920,\"$lib\":\"web\","       \
    "\"$lib_version\":\"1.200.0\"}"

#define BENCH_EVENT                                                          \
    "{\"event\":\"$pageview\",\"distinct_id\":\"user-1\",\"uuid\":"          \
    "\"0198393f-1b8a-7c2e-a269-737351f06167\",\"timestamp\":"                \
    "\"2025-07-01T10:59:58Z\"," BENCH_PROPS "}"


/* the event with api_key first, as the bench's single request */
#define BENCH_SINGLE                                                         \
    "{\"api_key\":\"phc_bench_token\",\"event\":\"$pageview\","            \
    "\"distinct_id\":\"user-1\",\"uuid\":"                                  \
    "\"0198393f-1b8a-7c2e-a269-737351f06167\",\"timestamp\":"                \
    "\"2025-07-01T10:59:58Z\"," BENCH_PROPS "}"


#endif /* _CAPTURE_BENCH_EVENT_H_INCLUDED_ */
