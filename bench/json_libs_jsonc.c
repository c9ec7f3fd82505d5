/*
 * Copyright (C) edgehog
 */

/* the json-c row of json_libs.c, apart: its symbols clash with jansson's */


#include <string.h>
#include <json-c/json.h>


size_t bench_jsonc(const char *p, size_t len);


size_t
bench_jsonc(const char *p, size_t len)
{
    size_t                 i, n, out;
    json_object           *root, *ev, *props, *v;
    json_tokener          *tok;

    tok = json_tokener_new();
    root = json_tokener_parse_ex(tok, p, (int) len);
    json_tokener_free(tok);

    out = 0;
    n = json_object_array_length(root);

    for (i = 0; i < n; i++) {
        ev = json_object_array_get_idx(root, i);
        json_object_object_get_ex(ev, "properties", &props);
        json_object_object_get_ex(ev, "event", &v);
        out += json_object_get_string_len(v);
        json_object_object_get_ex(ev, "uuid", &v);
        out += json_object_get_string_len(v);
        json_object_object_get_ex(props, "distinct_id", &v);
        out += json_object_get_string_len(v);
        json_object_object_get_ex(props, "token", &v);
        out += json_object_get_string_len(v);
        out += strlen(json_object_to_json_string_ext(ev,
                                                JSON_C_TO_STRING_PLAIN));
    }

    json_object_put(root);

    return out;
}
