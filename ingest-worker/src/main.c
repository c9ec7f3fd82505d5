/*
 * Copyright (C) edgehog
 */


#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker.h"


volatile sig_atomic_t  worker_stop;


static void worker_usage(FILE *f);
static void worker_signal(int signo);
static int worker_cmd_migrate(const worker_config_t *cf, int argc,
    char **argv);
static int worker_cmd_team(const worker_config_t *cf, int argc, char **argv);


int
main(int argc, char **argv)
{
    int               c, rc;
    const char       *path, *cmd;
    worker_config_t   cf;
    struct sigaction  sa;

    path = NULL;

    while ((c = getopt(argc, argv, "+c:h")) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'h':
            worker_usage(stdout);
            return 0;
        default:
            worker_usage(stderr);
            return 2;
        }
    }

    if (optind >= argc) {
        worker_usage(stderr);
        return 2;
    }

    cmd = argv[optind];

    if (worker_config_load(&cf, path) != 0) {
        return 1;
    }

    worker_log_set_level(cf.log_level);

    /* libpq waits forever for an unreachable server unless told; a DSN's
     * own connect_timeout still wins */
    setenv("PGCONNECT_TIMEOUT", "5", 0);

    /* SIGTERM ends the loop between batches; no SA_RESTART on purpose */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = worker_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (strcmp(cmd, "run") == 0) {
        /* a failed start is not fatal: the next `run` retries */
        (void) worker_sync_start(&cf);
        rc = worker_run(&cf);
        worker_sync_stop();

    } else if (strcmp(cmd, "flag") == 0) {
        rc = worker_cmd_flag(&cf, argc - optind - 1, argv + optind + 1);

    } else if (strcmp(cmd, "sync") == 0) {
        rc = worker_sync_once(&cf) == 0 ? 0 : 1;

    } else if (strcmp(cmd, "migrate") == 0) {
        rc = worker_cmd_migrate(&cf, argc - optind - 1, argv + optind + 1);

    } else if (strcmp(cmd, "team") == 0) {
        rc = worker_cmd_team(&cf, argc - optind - 1, argv + optind + 1);

    } else if (strcmp(cmd, "check-config") == 0) {
        rc = 0;

    } else {
        fprintf(stderr, "ingest-worker: unknown command \"%s\"\n", cmd);
        worker_usage(stderr);
        rc = 2;
    }

    worker_config_free(&cf);

    return rc;
}


static void
worker_usage(FILE *f)
{
    fprintf(f,
        "usage: ingest-worker [-c config] command [args]\n"
        "\n"
        "commands:\n"
        "  run                         consume events_plugin_ingestion\n"
        "  migrate [postgres|clickhouse]\n"
        "                              create or update the schemas\n"
        "  team create --name N [--token T]\n"
        "                              create a project, print id and token\n"
        "  flag put --team T [--file F]  create or update a flag from\n"
        "                              PostHog flag JSON (stdin by default)\n"
        "  flag list --team T          print the team's flags as JSON\n"
        "  flag delete --team T --key K\n"
        "                              delete a flag (soft, as PostHog)\n"
        "  sync                        publish every team's flag snapshot\n"
        "  check-config                validate the config file and exit\n");
}


static void
worker_signal(int signo)
{
    worker_stop = 1;
}


static int
worker_cmd_migrate(const worker_config_t *cf, int argc, char **argv)
{
    int           pg_only, ch_only;
    worker_pg_t  *pg;

    pg_only = argc > 0 && strcmp(argv[0], "postgres") == 0;
    ch_only = argc > 0 && strcmp(argv[0], "clickhouse") == 0;

    if (argc > 0 && !pg_only && !ch_only) {
        fprintf(stderr, "ingest-worker: migrate: unknown target \"%s\" "
                "(postgres or clickhouse)\n", argv[0]);
        return 2;
    }

    if (!ch_only) {
        pg = worker_pg_connect(cf->postgres_dsn);
        if (pg == NULL || worker_pg_migrate(pg) != 0) {
            worker_pg_close(pg);
            return 1;
        }

        worker_pg_close(pg);
        worker_log(WORKER_LOG_INFO, "postgres schema is up to date");
    }

    if (!pg_only) {
        if (worker_clickhouse_migrate(cf) != 0) {
            return 1;
        }

        worker_log(WORKER_LOG_INFO, "clickhouse schema is up to date");
    }

    return 0;
}


static int
worker_cmd_team(const worker_config_t *cf, int argc, char **argv)
{
    int           i;
    char          token[256];
    int64_t       id;
    const char   *name, *tok;
    worker_pg_t  *pg;

    if (argc < 1 || strcmp(argv[0], "create") != 0) {
        fprintf(stderr, "ingest-worker: usage: team create --name N "
                "[--token T]\n");
        return 2;
    }

    name = "Default project";
    tok = NULL;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--name") == 0 && i + 1 < argc) {
            name = argv[++i];

        } else if (strcmp(argv[i], "--token") == 0 && i + 1 < argc) {
            tok = argv[++i];

        } else {
            fprintf(stderr, "ingest-worker: team create: unexpected "
                    "argument \"%s\"\n", argv[i]);
            return 2;
        }
    }

    pg = worker_pg_connect(cf->postgres_dsn);
    if (pg == NULL) {
        return 1;
    }

    if (worker_pg_team_create(pg, name, tok, &id, token, sizeof(token)) != 0) {
        worker_pg_close(pg);
        return 1;
    }

    worker_pg_close(pg);

    printf("id=%lld\ntoken=%s\n", (long long) id, token);

    return 0;
}
