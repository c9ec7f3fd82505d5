/*
 * Copyright (C) edgehog
 */

/*
 * Hash-key overrides follow persons (spec/ingestion.md §3.5 step 3):
 * person.c moves the Postgres rows inside the merge transaction; this
 * moves the serving copy in Redis (common/eh_group_entry.h) the same
 * way, source fields into the target's hash where the target has none
 * (ON CONFLICT DO NOTHING: the target's overrides win), then drops the
 * source's hash.  One script, so a reader never sees a half move.
 *
 * An override decide created for the source just before the merge may
 * still wait in edgehog:hko:pending; the script leaves a forwarding key
 * (WORKER_HKO_MOVED_PREFIX, a day) so the sync thread stores it for the
 * target instead of dropping it for a person that no longer exists.
 */


#include <stdint.h>
#include <stdio.h>
#include <hiredis/hiredis.h>

#include "worker.h"
#include "eh_group_entry.h"


static const char  worker_hko_move_lua[] =
    "local src = redis.call('HGETALL', KEYS[1]) "
    "for i = 1, #src, 2 do "
    "  redis.call('HSETNX', KEYS[2], src[i], src[i + 1]) "
    "end "
    "redis.call('DEL', KEYS[1]) "
    "redis.call('SET', KEYS[3], ARGV[1], 'EX', 86400) "
    "return #src / 2";


int
worker_hko_move(struct redisContext *r, int64_t team_id, int64_t target_id,
    int64_t source_id)
{
    int          rc;
    char         src[128], dst[128], moved[128], target[24];
    redisReply  *reply;

    /* no Redis now: the refill after a wipe or the next merge fixes it */
    if (r == NULL) {
        return -1;
    }

    eh_hko_key(src, sizeof(src), team_id, source_id);
    eh_hko_key(dst, sizeof(dst), team_id, target_id);
    snprintf(moved, sizeof(moved), WORKER_HKO_MOVED_PREFIX "%lld:%lld",
             (long long) team_id, (long long) source_id);
    snprintf(target, sizeof(target), "%lld", (long long) target_id);

    reply = redisCommand(r, "EVAL %s 3 %s %s %s %s", worker_hko_move_lua,
                         src, dst, moved, target);

    if (reply == NULL) {
        worker_log(WORKER_LOG_WARN, "hash key overrides: redis: %s",
                   r->errstr);
        return -1;
    }

    rc = reply->type == REDIS_REPLY_ERROR ? -1 : 0;

    if (rc != 0) {
        worker_log(WORKER_LOG_WARN, "hash key overrides: redis: %s",
                   reply->str);
    }

    freeReplyObject(reply);

    return rc;
}
