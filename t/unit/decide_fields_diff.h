/*
 * Copyright (C) edgehog
 */

/*
 * The differential check of decide_fields_get(), shared by its unit test
 * and the fuzzer: the one-pass version must read every field exactly as
 * the per-name json_object_get() version it replaced (kept here as the
 * reference, verbatim but renamed) reads it.
 */

#ifndef _DECIDE_FIELDS_DIFF_H_INCLUDED_
#define _DECIDE_FIELDS_DIFF_H_INCLUDED_


#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <jansson.h>

#include "decide_request.h"


static const char *ref_field_string(json_t *body, const char *a,
    const char *b, const char *c);
static json_t *ref_field_object(json_t *body, const char *a, const char *b);
static int ref_field_true(json_t *body, const char *name);
static void ref_format_number(json_t *v, char *buf, size_t size);
static size_t ref_utf8_prefix(const char *s, size_t len, size_t max);


static void
ref_fields_get(json_t *body, decide_fields_t *f)
{
    size_t       n;
    json_t      *v;
    const char  *s;

    memset(f, 0, offsetof(decide_fields_t, id_buf));
    f->id_buf[0] = '\0';

    if (!json_is_object(body)) {
        return;
    }

    f->token = ref_field_string(body, "token", "$token", "api_key");

    v = json_object_get(body, "distinct_id");
    if (v == NULL || json_is_null(v)) {
        v = json_object_get(body, "$distinct_id");
    }

    if (json_is_string(v)) {
        s = json_string_value(v);
        n = ref_utf8_prefix(s, json_string_length(v),
                               DECIDE_DISTINCT_ID_MAX_CHARS);
        memcpy(f->id_buf, s, n);
        f->id_buf[n] = '\0';
        f->distinct_id = f->id_buf;

    } else if (json_is_number(v)) {
        ref_format_number(v, f->id_buf, sizeof(f->id_buf));
        f->distinct_id = f->id_buf;
    }

    f->anon_distinct_id = ref_field_string(body, "$anon_distinct_id",
                                              "anon_distinct_id", NULL);

    if (f->anon_distinct_id == NULL) {
        v = ref_field_object(body, "person_properties", "$properties");
        s = json_string_value(json_object_get(v, "$anon_distinct_id"));
        f->anon_distinct_id = (s && *s) ? s : NULL;
    }

    f->device_id = ref_field_string(body, "$device_id", "device_id", NULL);
    f->person_properties = ref_field_object(body, "person_properties",
                                               "$properties");
    f->groups = ref_field_object(body, "groups", "$groups");
    f->group_properties = ref_field_object(body, "group_properties",
                                              "$group_properties");

    v = json_object_get(body, "flag_keys");
    if (!json_is_array(v)) {
        v = json_object_get(body, "flag_keys_to_evaluate");
    }

    f->flag_keys = json_is_array(v) ? v : NULL;

    /* evaluation_contexts is the newer name of the same list */
    v = json_object_get(body, "evaluation_environments");
    if (!json_is_array(v)) {
        v = json_object_get(body, "evaluation_contexts");
    }

    f->environments = json_is_array(v) ? v : NULL;

    /* an explicit runtime wins over detection (spec 1.4, 5.2) */
    s = json_string_value(json_object_get(body, "evaluation_runtime"));

    if (s && strcmp(s, "client") == 0) {
        f->runtime = DECIDE_RUNTIME_CLIENT;
        f->runtime_set = 1;

    } else if (s && strcmp(s, "server") == 0) {
        f->runtime = DECIDE_RUNTIME_SERVER;
        f->runtime_set = 1;

    } else if (s && strcmp(s, "all") == 0) {
        f->runtime = DECIDE_RUNTIME_ANY;
        f->runtime_set = 1;
    }

    f->disable_flags = ref_field_true(body, "disable_flags");
    f->geoip_disable = ref_field_true(body, "geoip_disable");
}


static const char *
ref_field_string(json_t *body, const char *a, const char *b,
    const char *c)
{
    const char  *names[3], *s;
    int          i;

    names[0] = a;
    names[1] = b;
    names[2] = c;

    for (i = 0; i < 3 && names[i]; i++) {
        s = json_string_value(json_object_get(body, names[i]));
        if (s != NULL && *s != '\0') {
            return s;
        }
    }

    return NULL;
}


static json_t *
ref_field_object(json_t *body, const char *a, const char *b)
{
    json_t  *v;

    v = json_object_get(body, a);
    if (json_is_object(v)) {
        return v;
    }

    v = json_object_get(body, b);

    return json_is_object(v) ? v : NULL;
}


static int
ref_field_true(json_t *body, const char *name)
{
    json_t      *v;
    const char  *s;

    v = json_object_get(body, name);

    if (json_is_true(v)) {
        return 1;
    }

    s = json_string_value(v);

    return s && (strcasecmp(s, "true") == 0 || strcmp(s, "1") == 0);
}


/* integers as decimals, reals as the shortest round-trip text */
static void
ref_format_number(json_t *v, char *buf, size_t size)
{
    int     prec;
    double  d, back;

    if (json_is_integer(v)) {
        snprintf(buf, size, "%lld", (long long) json_integer_value(v));
        return;
    }

    d = json_real_value(v);

    for (prec = 1; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, d);
        back = strtod(buf, NULL);
        if (back == d) {
            break;
        }
    }
}


static size_t
ref_utf8_prefix(const char *s, size_t len, size_t max)
{
    size_t  i, chars;

    for (i = 0, chars = 0; i < len; chars++) {
        if (chars == max) {
            return i;
        }

        i++;

        /* continuation bytes belong to the scalar value before them */
        while (i < len && ((unsigned char) s[i] & 0xc0) == 0x80) {
            i++;
        }
    }

    return len;
}


/* 0: the same fields (pointers into the same body, equal id text) */
static int
decide_fields_diff(json_t *body)
{
    int               bad;
    decide_fields_t  *a, *b;

    a = malloc(sizeof(decide_fields_t));
    b = malloc(sizeof(decide_fields_t));
    if (a == NULL || b == NULL) {
        abort();
    }

    decide_fields_get(body, a);
    ref_fields_get(body, b);

#define decide_fields_differ(x)                                              \
    ((a->x != b->x) ? (fprintf(stderr, "# fields differ in " #x "\n"), 1)    \
                    : 0)

    bad = decide_fields_differ(token)
          + decide_fields_differ(anon_distinct_id)
          + decide_fields_differ(device_id)
          + decide_fields_differ(person_properties)
          + decide_fields_differ(groups)
          + decide_fields_differ(group_properties)
          + decide_fields_differ(flag_keys)
          + decide_fields_differ(environments)
          + decide_fields_differ(runtime)
          + decide_fields_differ(runtime_set)
          + decide_fields_differ(disable_flags)
          + decide_fields_differ(geoip_disable);

#undef decide_fields_differ

    if ((a->distinct_id == NULL) != (b->distinct_id == NULL)
        || (a->distinct_id && strcmp(a->distinct_id, b->distinct_id) != 0))
    {
        fprintf(stderr, "# fields differ in distinct_id\n");
        bad++;
    }

    free(a);
    free(b);

    return bad;
}


#endif /* _DECIDE_FIELDS_DIFF_H_INCLUDED_ */
