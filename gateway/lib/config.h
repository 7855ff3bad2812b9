/*
 * Configuration: one JSON file parsed into plain, immutable structs.  The
 * loader is table-driven, rejects unknown keys and names the key at fault.
 * Paths in the file are resolved against the file's directory.  This module
 * reads no key or secret: it only records where they live.
 */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#define GW_CONF_SENTINELS_MAX 16  /* shared_state.sentinels */
#define GW_THREADS_MAX        256 /* threads */

#include <stddef.h>
#include <stdint.h>

struct gw_conf_jwt_key {
	char *kid;  /* may be NULL: key applies to tokens without kid */
	char *alg;  /* RS/PS/ES 256..512, EdDSA or HS256: pinned */
	char *file; /* PEM public key, or secret file for HS256 */
};

struct gw_conf_issuer {
	char *issuer;
	char **audiences;
	size_t naudiences;
	struct gw_conf_jwt_key *keys;
	size_t nkeys;
	/* A JWK Set (docs/IDP.md): at most one of the three sources. */
	char *discovery_url; /* OIDC discovery document, https */
	char *jwks_uri;      /* the JWK Set, https */
	char *jwks_file;     /* a JWK Set on disk, read at load */
	char **algorithms;   /* allow-list for JWKS keys; NULL: RS256 */
	size_t nalgorithms;
	char *jwks_ca_file;         /* NULL: the system store */
	long long jwks_refresh_s;   /* 0: Cache-Control, clamped */
	long long jwks_max_stale_s; /* 0: 24 h */
};

/*
 * A credentials entry.  Which keys a type takes is checked at load (see
 * credrules in config.c); keys a type does not take are NULL.  Secrets live
 * in files (password_file, secret_key_file, file), never in the config.
 */
struct gw_conf_cred {
	char *name;
	char *type; /* "token_file", "iam_password", "iam_agency", "aksk" */
	char *file; /* token_file: holds an IAM token */
	char *iam_endpoint;  /* IAM types: https:// base URL of IAM */
	char *user;          /* iam_password: IAM user name */
	char *domain;        /* iam_password: account; iam_agency: delegating */
	char *password_file; /* iam_password */
	char *base;          /* iam_agency: name of an iam_password entry */
	char *agency;        /* iam_agency: agency name */
	char *access_key;    /* aksk */
	char *secret_key_file;      /* aksk */
	long long refresh_margin_s; /* IAM types; 0: 10% of lifetime, <= 1 h */
	const struct gw_conf_cred *base_cred; /* iam_agency: resolved at load */
};

struct gw_conf_project {
	char *alias;
	char *project_id;
	char *region;
	char *endpoint; /* https://hss.<region>.myhuaweicloud.com */
	char *enterprise_project_id; /* default, may be NULL */
	char **enterprise_projects;  /* others a caller may name; "*": any */
	size_t nenterprise_projects;
	char *credentials;               /* name of a gw_conf_cred */
	const struct gw_conf_cred *cred; /* resolved at load */
};

struct gw_config {
	char *path;
	char *listen; /* "unix:/path", "host:port", "fd:0" or "systemd" */
	long long threads;
	long long max_body_bytes;
	long long request_read_timeout_ms;  /* header + body, total */
	long long response_send_timeout_ms; /* blocked writing, total */
	long long keepalive_timeout_ms;     /* a kept connection's idle */
	char **listen_allow;                /* NULL: 127.0.0.1 and ::1 */
	size_t nlisten_allow;
	long long reserve_threads; /* kept for requests that do not wait */
	/* jwt */
	long long jwt_leeway_s;
	long long jwt_max_token_bytes;
	long long jwt_cache_entries; /* verified-token cache, 0: off */
	struct gw_conf_issuer *issuers;
	size_t nissuers;
	/* policy */
	char *policies_dir;
	char *shadow_policies_dir; /* NULL: no shadow policies */
	/* projects and credentials */
	struct gw_conf_project *projects;
	size_t nprojects;
	struct gw_conf_cred *creds;
	size_t ncreds;
	/* upstream */
	long long up_connect_timeout_ms;
	long long up_timeout_ms;
	long long up_max_response_bytes;
	char *up_ca_file; /* NULL: system store */
	/* audit */
	char *audit_file;
	long long audit_fsync;        /* 1 (default): fdatasync each commit */
	long long audit_rotate_bytes; /* 0: no size-based rotation */
	long long audit_syslog;       /* 1: copy records to syslog */
	long long audit_anon_bytes_per_hour; /* then summarised; 10 MiB */
	long long audit_summary_interval_ms; /* one summary per; 60 s */
	char *audit_signing_key_file;        /* Ed25519 PEM; NULL: unsigned */
	long long audit_signed_checkpoint_interval_s; /* 60 s */
	/* audit.ship: "hssgw audit ship" (docs/AUDIT.md, "Shipping");
	 * ship_relp NULL: not configured */
	char *ship_relp;           /* "host:port" of the RELP collector */
	char *ship_host;           /* split from ship_relp at load */
	char *ship_port;           /* decimal, 1..65535 */
	char *ship_cursor_file;    /* the last acknowledged record */
	char *ship_metrics_file;   /* Prometheus textfile, or NULL */
	long long ship_batch_size; /* records per RELP session; 256 */
	long long ship_timeout_s;  /* connect, acknowledgement; 10 */
	long long ship_tls;        /* 1: TLS to the collector */
	char *ship_tls_ca_file;
	char *ship_tls_cert_file; /* client certificate, or NULL */
	char *ship_tls_key_file;
	char *ship_tls_auth_mode;        /* "name" (default), "fingerprint",
	                                  * "certvalid" */
	char **ship_tls_permitted_peers; /* default: the relp host */
	size_t nship_tls_permitted_peers;
	/* hssgw serve: exports answer 503 while the oldest record the
	 * collector has not acknowledged is older; 0: off */
	long long ship_max_lag_s;
	/* exports */
	long long default_export_size;
	/* tasks: status, download, upstream budget (docs/TASKS.md) */
	char *tasks_handle_key_file;        /* NULL: a random key per process */
	long long tasks_budget_per_minute;  /* per (credentials, API), 5 */
	char *tasks_fair_share_claim;       /* NULL: by subject */
	long long tasks_coalesce_window_ms; /* 0: no coalescing */
	long long tasks_status_cache_ttl_s; /* 0: no cache; default 12 */
	long long tasks_download_timeout_ms;
	long long tasks_max_file_bytes;
	long long tasks_retry_deadline_ms; /* HSS 429 retries; 0: none */
	/* this instance's name in audit records; default the hostname */
	char *instance;
	/* shared_state (docs/SHARED_STATE.md): shared_redis, or Sentinels
	 * (nshared_sentinels > 0); neither: none (gw_conf_shared) */
	char *shared_redis;       /* "unix:/path" or "redis://host:port/db" */
	char **shared_sentinels;  /* "host:port" each */
	size_t nshared_sentinels; /* at most GW_CONF_SENTINELS_MAX */
	char *shared_master_name; /* with sentinels: the master's name */
	char *shared_sentinel_username;      /* Sentinel's ACL user, or NULL */
	char *shared_sentinel_password_file; /* secret file, or NULL */
	char **shared_sentinel_hosts;        /* parsed: nshared_sentinels */
	long long *shared_sentinel_ports;
	char *shared_username;               /* Redis 6+ ACL user, or NULL */
	char *shared_password_file;          /* secret file, or NULL */
	char *shared_key_prefix;             /* default "hssgw:" */
	long long shared_timeout_ms;         /* connect and command, 250 */
	long long shared_expected_instances; /* local fallback divisor, 2 */
	/* shared_redis, parsed at load: a unix path, or host, port and db */
	char *shared_unix;
	char *shared_host;
	long long shared_port;
	long long shared_db;
	/* metrics (docs/METRICS.md) */
	long long metrics_enabled; /* 1 (default): GET /metrics answers */
};

/* Loads and validates a config file; NULL with a reason naming the key. */
struct gw_config *gw_conf_load(const char *path, char *err, size_t errlen);
/* Frees a config; accepts NULL. */
void gw_conf_free(struct gw_config *);
/* 1 when shared_state names a Redis or Sentinels, else 0. */
int gw_conf_shared(const struct gw_config *);
/* Borrowed project by alias, or NULL. */
const struct gw_conf_project *gw_conf_project_get(const struct gw_config *,
                                                  const char *alias);

#endif
