/*
 * aegis-nfs: an NFSv3 test client built on libnfs (written against 4.0).
 *
 * Script mode mounts one export and runs commands read from stdin, one per
 * line with TAB-separated arguments, printing one JSON object per command.
 * Bench mode drives the libnfs async API with several requests in flight and
 * prints one JSON summary line. See README.md next to this file.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw-nfs.h>

#define MIB (1024ULL * 1024ULL)
/* Largest `read` returned inline as hex; larger transfers use readfile. */
#define MAX_HEX_READ MIB
#define FILE_COPY_CHUNK MIB
#define DEFAULT_TIMEOUT_SECONDS 30
/* Largest integer that a JavaScript number represents exactly (2^53 - 1). */
#define JS_MAX_SAFE_INTEGER 9007199254740991ULL

/* ------------------------------------------------------------------ */
/* JSON output                                                          */
/* ------------------------------------------------------------------ */

struct json {
	char *data;
	size_t len;
	size_t cap;
	bool need_comma;
};

static void json_reserve(struct json *j, size_t extra)
{
	if (j->len + extra + 1 <= j->cap)
		return;
	size_t cap = j->cap ? j->cap : 256;
	while (cap < j->len + extra + 1)
		cap *= 2;
	char *data = realloc(j->data, cap);
	if (data == NULL) {
		fputs("aegis-nfs: out of memory\n", stderr);
		exit(3);
	}
	j->data = data;
	j->cap = cap;
}

static void json_append(struct json *j, const char *s, size_t n)
{
	json_reserve(j, n);
	memcpy(j->data + j->len, s, n);
	j->len += n;
	j->data[j->len] = '\0';
}

static void json_printf(struct json *j, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void json_printf(struct json *j, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	json_reserve(j, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(j->data + j->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	j->len += (size_t)n;
}

static void json_reset(struct json *j)
{
	j->len = 0;
	j->need_comma = false;
	if (j->data != NULL)
		j->data[0] = '\0';
}

/* Length of the valid UTF-8 sequence at s, or 0 when the bytes are invalid. */
static size_t utf8_sequence_length(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0];
	size_t n;
	uint32_t cp;

	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (avail < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* Reject overlong forms, UTF-16 surrogates and values past U+10FFFF. */
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

/*
 * Append s as a JSON string. Bytes that are not valid UTF-8 become U+FFFD,
 * so a name made of arbitrary bytes still yields a parseable line.
 */
static void json_string(struct json *j, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t avail = strlen(s);

	json_append(j, "\"", 1);
	while (avail > 0) {
		unsigned char c = *p;
		if (c == '"' || c == '\\') {
			char esc[2] = { '\\', (char)c };
			json_append(j, esc, 2);
		} else if (c == '\n') {
			json_append(j, "\\n", 2);
		} else if (c == '\t') {
			json_append(j, "\\t", 2);
		} else if (c == '\r') {
			json_append(j, "\\r", 2);
		} else if (c < 0x20 || c == 0x7f) {
			json_printf(j, "\\u%04x", c);
		} else if (c >= 0x80) {
			size_t n = utf8_sequence_length(p, avail);
			if (n == 0) {
				json_append(j, "\\ufffd", 6);
				n = 1;
			} else {
				json_append(j, (const char *)p, n);
			}
			p += n;
			avail -= n;
			continue;
		} else {
			json_append(j, (const char *)p, 1);
		}
		p++;
		avail--;
	}
	json_append(j, "\"", 1);
}

static void json_separator(struct json *j)
{
	if (j->need_comma)
		json_append(j, ",", 1);
	j->need_comma = false;
}

static void json_key(struct json *j, const char *key)
{
	json_separator(j);
	json_string(j, key);
	json_append(j, ":", 1);
}

static void json_begin(struct json *j, char bracket)
{
	json_separator(j);
	json_append(j, &bracket, 1);
	j->need_comma = false;
}

static void json_end(struct json *j, char bracket)
{
	json_append(j, &bracket, 1);
	j->need_comma = true;
}

static void json_kv_string(struct json *j, const char *key, const char *value)
{
	json_key(j, key);
	json_string(j, value);
	j->need_comma = true;
}

static void json_kv_u64(struct json *j, const char *key, uint64_t value)
{
	json_key(j, key);
	json_printf(j, "%" PRIu64, value);
	j->need_comma = true;
}

static void json_kv_i64(struct json *j, const char *key, int64_t value)
{
	json_key(j, key);
	json_printf(j, "%" PRId64, value);
	j->need_comma = true;
}

static void json_kv_bool(struct json *j, const char *key, bool value)
{
	json_key(j, key);
	json_append(j, value ? "true" : "false", value ? 4 : 5);
	j->need_comma = true;
}

static void json_kv_double(struct json *j, const char *key, double value)
{
	json_key(j, key);
	json_printf(j, "%.6f", value);
	j->need_comma = true;
}

/*
 * Append a 64-bit identifier (inode number, device, fsid). Values above
 * 2^53 - 1 are written as decimal strings because JSON.parse would round
 * them.
 */
static void json_kv_id(struct json *j, const char *key, uint64_t value)
{
	if (value <= JS_MAX_SAFE_INTEGER) {
		json_kv_u64(j, key, value);
		return;
	}
	char text[32];
	snprintf(text, sizeof(text), "%" PRIu64, value);
	json_kv_string(j, key, text);
}

static void json_kv_mode(struct json *j, uint64_t mode)
{
	char octal[16];
	snprintf(octal, sizeof(octal), "0%03" PRIo64, mode & 07777);
	json_kv_u64(j, "mode", mode & 07777);
	json_kv_string(j, "modeOctal", octal);
}

static void json_print_line(struct json *j)
{
	fwrite(j->data, 1, j->len, stdout);
	fputc('\n', stdout);
	fflush(stdout);
}

/* ------------------------------------------------------------------ */
/* Argument parsing                                                     */
/* ------------------------------------------------------------------ */

static bool parse_u64(const char *text, int base, uint64_t *out)
{
	if (text[0] == '\0' || text[0] == '-' || text[0] == '+')
		return false;
	char *end;
	errno = 0;
	unsigned long long value = strtoull(text, &end, base);
	if (errno != 0 || *end != '\0')
		return false;
	*out = value;
	return true;
}

static bool parse_i64(const char *text, int64_t *out)
{
	if (text[0] == '\0')
		return false;
	char *end;
	errno = 0;
	long long value = strtoll(text, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	*out = value;
	return true;
}

/* Parse a byte count with an optional binary suffix: K, M or G (x1024^n). */
static bool parse_size(const char *text, uint64_t *out)
{
	size_t n = strlen(text);
	uint64_t multiplier = 1;
	if (n > 0) {
		switch (text[n - 1]) {
		case 'k': case 'K': multiplier = 1024ULL; break;
		case 'm': case 'M': multiplier = MIB; break;
		case 'g': case 'G': multiplier = 1024ULL * MIB; break;
		default: break;
		}
	}
	char digits[32];
	if (multiplier != 1) {
		if (n - 1 >= sizeof(digits))
			return false;
		memcpy(digits, text, n - 1);
		digits[n - 1] = '\0';
		text = digits;
	}
	uint64_t value;
	if (!parse_u64(text, 10, &value) || value > UINT64_MAX / multiplier)
		return false;
	*out = value * multiplier;
	return true;
}

static bool parse_mode(const char *text, int *out)
{
	uint64_t value;
	if (!parse_u64(text, 8, &value) || value > 07777)
		return false;
	*out = (int)value;
	return true;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode hex text into a new buffer; returns false on odd length or a bad digit. */
static bool decode_hex(const char *text, unsigned char **out, size_t *out_len)
{
	size_t n = strlen(text);
	if (n % 2 != 0)
		return false;
	unsigned char *buf = malloc(n / 2 + 1);
	if (buf == NULL)
		return false;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hex_value(text[2 * i]);
		int lo = hex_value(text[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			free(buf);
			return false;
		}
		buf[i] = (unsigned char)(hi << 4 | lo);
	}
	*out = buf;
	*out_len = n / 2;
	return true;
}

static double monotonic_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------ */
/* Session                                                              */
/* ------------------------------------------------------------------ */

struct session {
	struct nfs_context *nfs;
	/* Message for the current failure, owned by the session. */
	char *error;
};

static void session_clear_error(struct session *s)
{
	free(s->error);
	s->error = NULL;
}

/* Record a libnfs failure; rc is the negative errno libnfs returned. */
static int fail_nfs(struct session *s, int rc)
{
	session_clear_error(s);
	const char *message = nfs_get_error(s->nfs);
	s->error = strdup(message != NULL && message[0] != '\0' ? message : strerror(-rc));
	return rc;
}

static int fail(struct session *s, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Record a failure detected by this program; err is a positive errno value. */
static int fail(struct session *s, int err, const char *fmt, ...)
{
	session_clear_error(s);
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&s->error, fmt, ap) < 0)
		s->error = NULL;
	va_end(ap);
	return -err;
}

/* Map a command path to a libnfs path: "" names the export root. */
static const char *export_path(const char *path)
{
	return path[0] == '\0' ? "/" : path;
}

/*
 * Create a libnfs context, apply defaults suited to testing a server, let the
 * URL override them, and mount the export. Returns NULL after printing a JSON
 * error line when the URL is invalid or the mount fails.
 */
static struct nfs_context *mount_url(const char *url_text, int timeout_seconds, struct json *out)
{
	struct nfs_context *nfs = nfs_init_context();
	if (nfs == NULL) {
		json_reset(out);
		json_begin(out, '{');
		json_kv_bool(out, "ok", false);
		json_kv_string(out, "error", "nfs_init_context failed");
		json_kv_i64(out, "errno", ENOMEM);
		json_kv_string(out, "stage", "init");
		json_end(out, '}');
		json_print_line(out);
		return NULL;
	}

	/*
	 * A test client must observe the server, not a client-side cache, and
	 * should fail fast instead of reconnecting forever. URL arguments
	 * (dircache=, autoreconnect=, uid=, gid=, ...) are parsed afterwards and
	 * override these defaults.
	 */
	nfs_set_dircache(nfs, 0);
	nfs_set_autoreconnect(nfs, 0);
	nfs_set_timeout(nfs, timeout_seconds * 1000);
	/* Send modes exactly as given; a kernel client applies the umask itself. */
	nfs_umask(nfs, 0);

	struct nfs_url *url = nfs_parse_url_dir(nfs, url_text);
	if (url == NULL) {
		json_reset(out);
		json_begin(out, '{');
		json_kv_bool(out, "ok", false);
		char *message;
		if (asprintf(&message, "invalid NFS URL '%s': %s", url_text, nfs_get_error(nfs)) < 0)
			message = NULL;
		json_kv_string(out, "error", message != NULL ? message : "invalid NFS URL");
		free(message);
		json_kv_i64(out, "errno", EINVAL);
		json_kv_string(out, "stage", "url");
		json_end(out, '}');
		json_print_line(out);
		nfs_destroy_context(nfs);
		return NULL;
	}

	int rc = nfs_mount(nfs, url->server, url->path);
	if (rc != 0) {
		json_reset(out);
		json_begin(out, '{');
		json_kv_bool(out, "ok", false);
		char *message;
		if (asprintf(&message, "mount of %s:%s failed: %s", url->server, url->path,
			     nfs_get_error(nfs)) < 0)
			message = NULL;
		json_kv_string(out, "error", message != NULL ? message : "mount failed");
		free(message);
		json_kv_i64(out, "errno", -rc);
		json_kv_string(out, "stage", "mount");
		json_end(out, '}');
		json_print_line(out);
		nfs_destroy_url(url);
		nfs_destroy_context(nfs);
		return NULL;
	}
	nfs_destroy_url(url);
	return nfs;
}

/* ------------------------------------------------------------------ */
/* Script commands                                                      */
/* ------------------------------------------------------------------ */

static const char *type_from_mode(uint64_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: return "file";
	case S_IFDIR: return "dir";
	case S_IFLNK: return "symlink";
	case S_IFBLK: return "block";
	case S_IFCHR: return "char";
	case S_IFIFO: return "fifo";
	case S_IFSOCK: return "socket";
	default: return "unknown";
	}
}

static const char *type_from_ftype3(uint32_t type)
{
	switch (type) {
	case NF3REG: return "file";
	case NF3DIR: return "dir";
	case NF3LNK: return "symlink";
	case NF3BLK: return "block";
	case NF3CHR: return "char";
	case NF3FIFO: return "fifo";
	case NF3SOCK: return "socket";
	default: return "unknown";
	}
}

static void json_stat(struct json *out, const struct nfs_stat_64 *st)
{
	json_kv_string(out, "type", type_from_mode(st->nfs_mode));
	json_kv_mode(out, st->nfs_mode);
	json_kv_u64(out, "size", st->nfs_size);
	json_kv_u64(out, "uid", st->nfs_uid);
	json_kv_u64(out, "gid", st->nfs_gid);
	json_kv_u64(out, "nlink", st->nfs_nlink);
	json_kv_id(out, "ino", st->nfs_ino);
	json_kv_id(out, "dev", st->nfs_dev);
	json_kv_id(out, "rdev", st->nfs_rdev);
	json_kv_u64(out, "blksize", st->nfs_blksize);
	json_kv_u64(out, "blocks", st->nfs_blocks);
	json_kv_u64(out, "used", st->nfs_used);
	json_kv_u64(out, "atime", st->nfs_atime);
	json_kv_u64(out, "atimeNsec", st->nfs_atime_nsec);
	json_kv_u64(out, "mtime", st->nfs_mtime);
	json_kv_u64(out, "mtimeNsec", st->nfs_mtime_nsec);
	json_kv_u64(out, "ctime", st->nfs_ctime);
	json_kv_u64(out, "ctimeNsec", st->nfs_ctime_nsec);
}

static int cmd_stat(struct session *s, char **argv, struct json *out)
{
	struct nfs_stat_64 st;
	int rc = nfs_lstat64(s->nfs, export_path(argv[1]), &st);
	if (rc < 0)
		return fail_nfs(s, rc);
	json_stat(out, &st);
	return 0;
}

static int cmd_stat_follow(struct session *s, char **argv, struct json *out)
{
	struct nfs_stat_64 st;
	int rc = nfs_stat64(s->nfs, export_path(argv[1]), &st);
	if (rc < 0)
		return fail_nfs(s, rc);
	json_stat(out, &st);
	return 0;
}

static int cmd_mkdir(struct session *s, char **argv, struct json *out)
{
	(void)out;
	int rc;
	if (argv[2] != NULL) {
		int mode;
		if (!parse_mode(argv[2], &mode))
			return fail(s, EINVAL, "invalid octal mode '%s'", argv[2]);
		rc = nfs_mkdir2(s->nfs, argv[1], mode);
	} else {
		rc = nfs_mkdir(s->nfs, argv[1]);
	}
	return rc < 0 ? fail_nfs(s, rc) : 0;
}

static int cmd_rmdir(struct session *s, char **argv, struct json *out)
{
	(void)out;
	int rc = nfs_rmdir(s->nfs, argv[1]);
	return rc < 0 ? fail_nfs(s, rc) : 0;
}

static int cmd_unlink(struct session *s, char **argv, struct json *out)
{
	(void)out;
	int rc = nfs_unlink(s->nfs, argv[1]);
	return rc < 0 ? fail_nfs(s, rc) : 0;
}

static int cmd_rename(struct session *s, char **argv, struct json *out)
{
	(void)out;
	int rc = nfs_rename(s->nfs, argv[1], argv[2]);
	return rc < 0 ? fail_nfs(s, rc) : 0;
}

static int cmd_truncate(struct session *s, char **argv, struct json *out)
{
	(void)out;
	uint64_t size;
	if (!parse_u64(argv[2], 10, &size))
		return fail(s, EINVAL, "invalid size '%s'", argv[2]);
	int rc = nfs_truncate(s->nfs, argv[1], size);
	return rc < 0 ? fail_nfs(s, rc) : 0;
}

static int cmd_symlink(struct session *s, char **argv, struct json *out)
{
	(void)out;
	int rc = nfs_symlink(s->nfs, argv[1], argv[2]);
	return rc < 0 ? fail_nfs(s, rc) : 0;
}

static int cmd_readlink(struct session *s, char **argv, struct json *out)
{
	char *target = NULL;
	int rc = nfs_readlink2(s->nfs, argv[1], &target);
	if (rc < 0)
		return fail_nfs(s, rc);
	json_kv_string(out, "target", target != NULL ? target : "");
	free(target);
	return 0;
}

static int cmd_link(struct session *s, char **argv, struct json *out)
{
	(void)out;
	int rc = nfs_link(s->nfs, argv[1], argv[2]);
	return rc < 0 ? fail_nfs(s, rc) : 0;
}

static int cmd_chmod(struct session *s, char **argv, struct json *out)
{
	(void)out;
	int mode;
	if (!parse_mode(argv[2], &mode))
		return fail(s, EINVAL, "invalid octal mode '%s'", argv[2]);
	int rc = nfs_chmod(s->nfs, export_path(argv[1]), mode);
	return rc < 0 ? fail_nfs(s, rc) : 0;
}

static int parse_owner(struct session *s, char **argv, int *uid, int *gid)
{
	uint64_t u, g;
	if (!parse_u64(argv[2], 10, &u) || u > UINT32_MAX)
		return fail(s, EINVAL, "invalid uid '%s'", argv[2]);
	if (!parse_u64(argv[3], 10, &g) || g > UINT32_MAX)
		return fail(s, EINVAL, "invalid gid '%s'", argv[3]);
	*uid = (int)(uint32_t)u;
	*gid = (int)(uint32_t)g;
	return 0;
}

static int cmd_chown(struct session *s, char **argv, struct json *out)
{
	(void)out;
	int uid, gid;
	int rc = parse_owner(s, argv, &uid, &gid);
	if (rc < 0)
		return rc;
	rc = nfs_chown(s->nfs, export_path(argv[1]), uid, gid);
	return rc < 0 ? fail_nfs(s, rc) : 0;
}

static int cmd_lchown(struct session *s, char **argv, struct json *out)
{
	(void)out;
	int uid, gid;
	int rc = parse_owner(s, argv, &uid, &gid);
	if (rc < 0)
		return rc;
	rc = nfs_lchown(s->nfs, export_path(argv[1]), uid, gid);
	return rc < 0 ? fail_nfs(s, rc) : 0;
}

/*
 * Parse "ATIME_SEC ATIME_USEC MTIME_SEC MTIME_USEC" into times[2]. With no
 * time arguments *use_server_time is set, and the caller passes NULL times so
 * that libnfs sets both times to the server's clock.
 */
static int parse_utimes(struct session *s, char **argv, int argc, struct timeval times[2],
			bool *use_server_time)
{
	if (argc == 2) {
		*use_server_time = true;
		return 0;
	}
	if (argc != 6)
		return fail(s, EINVAL, "%s needs PATH and either no times or "
			    "ATIME_SEC ATIME_USEC MTIME_SEC MTIME_USEC", argv[0]);
	for (int i = 0; i < 2; i++) {
		int64_t sec;
		uint64_t usec;
		if (!parse_i64(argv[2 + 2 * i], &sec))
			return fail(s, EINVAL, "invalid seconds '%s'", argv[2 + 2 * i]);
		if (!parse_u64(argv[3 + 2 * i], 10, &usec) || usec > 999999)
			return fail(s, EINVAL, "invalid microseconds '%s' (expected 0..999999)",
				    argv[3 + 2 * i]);
		times[i].tv_sec = (time_t)sec;
		times[i].tv_usec = (suseconds_t)usec;
	}
	*use_server_time = false;
	return 0;
}

static int cmd_utimes(struct session *s, char **argv, int argc, struct json *out)
{
	(void)out;
	struct timeval times[2];
	bool use_server_time;
	int rc = parse_utimes(s, argv, argc, times, &use_server_time);
	if (rc < 0)
		return rc;
	rc = nfs_utimes(s->nfs, export_path(argv[1]), use_server_time ? NULL : times);
	return rc < 0 ? fail_nfs(s, rc) : 0;
}

static int cmd_lutimes(struct session *s, char **argv, int argc, struct json *out)
{
	(void)out;
	struct timeval times[2];
	bool use_server_time;
	int rc = parse_utimes(s, argv, argc, times, &use_server_time);
	if (rc < 0)
		return rc;
	rc = nfs_lutimes(s->nfs, export_path(argv[1]), use_server_time ? NULL : times);
	return rc < 0 ? fail_nfs(s, rc) : 0;
}

static int create_with_flags(struct session *s, char **argv, int flags)
{
	int mode;
	if (!parse_mode(argv[2], &mode))
		return fail(s, EINVAL, "invalid octal mode '%s'", argv[2]);
	struct nfsfh *fh = NULL;
	int rc = nfs_open2(s->nfs, argv[1], flags, mode, &fh);
	if (rc < 0)
		return fail_nfs(s, rc);
	rc = nfs_close(s->nfs, fh);
	return rc < 0 ? fail_nfs(s, rc) : 0;
}

static int cmd_create(struct session *s, char **argv, struct json *out)
{
	(void)out;
	return create_with_flags(s, argv, O_WRONLY | O_CREAT | O_TRUNC);
}

static int cmd_create_excl(struct session *s, char **argv, struct json *out)
{
	(void)out;
	return create_with_flags(s, argv, O_WRONLY | O_CREAT | O_EXCL);
}

/* Write all of buf at offset, retrying after short writes. */
static int pwrite_all(struct session *s, struct nfsfh *fh, uint64_t offset,
		      const unsigned char *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		int rc = nfs_pwrite(s->nfs, fh, offset + done, len - done, buf + done);
		if (rc < 0)
			return fail_nfs(s, rc);
		if (rc == 0)
			return fail(s, EIO, "server accepted 0 bytes at offset %" PRIu64,
				    offset + done);
		done += (size_t)rc;
	}
	return 0;
}

static int cmd_write(struct session *s, char **argv, struct json *out)
{
	uint64_t offset;
	if (!parse_u64(argv[2], 10, &offset))
		return fail(s, EINVAL, "invalid offset '%s'", argv[2]);
	unsigned char *data;
	size_t len;
	if (!decode_hex(argv[3], &data, &len))
		return fail(s, EINVAL, "invalid hex data (expected an even number of hex digits)");

	struct nfsfh *fh = NULL;
	int rc = nfs_open(s->nfs, argv[1], O_WRONLY, &fh);
	if (rc < 0) {
		free(data);
		return fail_nfs(s, rc);
	}
	rc = pwrite_all(s, fh, offset, data, len);
	free(data);
	int close_rc = nfs_close(s->nfs, fh);
	if (rc < 0)
		return rc;
	if (close_rc < 0)
		return fail_nfs(s, close_rc);
	json_kv_u64(out, "count", len);
	return 0;
}

static int cmd_writefile(struct session *s, char **argv, int argc, struct json *out)
{
	int mode = 0644;
	if (argc > 3 && !parse_mode(argv[3], &mode))
		return fail(s, EINVAL, "invalid octal mode '%s'", argv[3]);
	int local = open(argv[2], O_RDONLY | O_CLOEXEC);
	if (local < 0)
		return fail(s, errno, "cannot open local file '%s': %s", argv[2], strerror(errno));
	unsigned char *buf = malloc(FILE_COPY_CHUNK);
	if (buf == NULL) {
		close(local);
		return fail(s, ENOMEM, "out of memory");
	}

	struct nfsfh *fh = NULL;
	int rc = nfs_open2(s->nfs, argv[1], O_WRONLY | O_CREAT | O_TRUNC, mode, &fh);
	if (rc < 0) {
		rc = fail_nfs(s, rc);
		goto out;
	}
	uint64_t total = 0;
	for (;;) {
		ssize_t n = read(local, buf, FILE_COPY_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = fail(s, errno, "cannot read local file '%s': %s", argv[2],
				  strerror(errno));
			break;
		}
		if (n == 0)
			break;
		rc = pwrite_all(s, fh, total, buf, (size_t)n);
		if (rc < 0)
			break;
		total += (uint64_t)n;
	}
	int close_rc = nfs_close(s->nfs, fh);
	if (rc >= 0 && close_rc < 0)
		rc = fail_nfs(s, close_rc);
	if (rc >= 0)
		json_kv_u64(out, "bytes", total);
out:
	free(buf);
	close(local);
	return rc < 0 ? rc : 0;
}

static int cmd_read(struct session *s, char **argv, struct json *out)
{
	uint64_t offset, count;
	if (!parse_u64(argv[2], 10, &offset))
		return fail(s, EINVAL, "invalid offset '%s'", argv[2]);
	if (!parse_u64(argv[3], 10, &count))
		return fail(s, EINVAL, "invalid count '%s'", argv[3]);
	if (count > MAX_HEX_READ)
		return fail(s, EINVAL, "count %" PRIu64 " exceeds the %llu byte limit of read; "
			    "use readfile for larger transfers", count, MAX_HEX_READ);

	unsigned char *buf = malloc(count > 0 ? count : 1);
	if (buf == NULL)
		return fail(s, ENOMEM, "out of memory");
	struct nfsfh *fh = NULL;
	int rc = nfs_open(s->nfs, argv[1], O_RDONLY, &fh);
	if (rc < 0) {
		free(buf);
		return fail_nfs(s, rc);
	}
	/* Keep reading after short replies; a 0-byte reply means end of file. */
	uint64_t done = 0;
	bool eof = false;
	while (done < count) {
		rc = nfs_pread(s->nfs, fh, offset + done, count - done, buf + done);
		if (rc < 0)
			break;
		if (rc == 0) {
			eof = true;
			break;
		}
		done += (uint64_t)rc;
	}
	if (rc < 0) {
		rc = fail_nfs(s, rc);
		nfs_close(s->nfs, fh);
		free(buf);
		return rc;
	}
	nfs_close(s->nfs, fh);

	json_kv_u64(out, "count", done);
	json_kv_bool(out, "eof", eof);
	json_key(out, "hex");
	json_reserve(out, 2 * done + 2);
	static const char digits[] = "0123456789abcdef";
	char *p = out->data + out->len;
	*p++ = '"';
	for (uint64_t i = 0; i < done; i++) {
		*p++ = digits[buf[i] >> 4];
		*p++ = digits[buf[i] & 0x0f];
	}
	*p++ = '"';
	*p = '\0';
	out->len = (size_t)(p - out->data);
	out->need_comma = true;
	free(buf);
	return 0;
}

static int cmd_readfile(struct session *s, char **argv, struct json *out)
{
	struct nfsfh *fh = NULL;
	int rc = nfs_open(s->nfs, argv[1], O_RDONLY, &fh);
	if (rc < 0)
		return fail_nfs(s, rc);
	int local = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (local < 0) {
		rc = fail(s, errno, "cannot create local file '%s': %s", argv[2], strerror(errno));
		nfs_close(s->nfs, fh);
		return rc;
	}
	unsigned char *buf = malloc(FILE_COPY_CHUNK);
	if (buf == NULL) {
		close(local);
		nfs_close(s->nfs, fh);
		return fail(s, ENOMEM, "out of memory");
	}

	uint64_t total = 0;
	for (;;) {
		rc = nfs_pread(s->nfs, fh, total, FILE_COPY_CHUNK, buf);
		if (rc < 0) {
			rc = fail_nfs(s, rc);
			break;
		}
		if (rc == 0)
			break;
		size_t n = (size_t)rc;
		size_t written = 0;
		while (written < n) {
			ssize_t w = write(local, buf + written, n - written);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				rc = fail(s, errno, "cannot write local file '%s': %s", argv[2],
					  strerror(errno));
				break;
			}
			written += (size_t)w;
		}
		if (rc < 0)
			break;
		total += n;
	}
	free(buf);
	if (close(local) < 0 && rc >= 0)
		rc = fail(s, errno, "cannot close local file '%s': %s", argv[2], strerror(errno));
	nfs_close(s->nfs, fh);
	if (rc < 0)
		return rc;
	json_kv_u64(out, "bytes", total);
	return 0;
}

static int cmd_ls(struct session *s, char **argv, struct json *out)
{
	struct nfsdir *dir = NULL;
	int rc = nfs_opendir(s->nfs, export_path(argv[1]), &dir);
	if (rc < 0)
		return fail_nfs(s, rc);
	json_key(out, "entries");
	json_begin(out, '[');
	struct nfsdirent *entry;
	while ((entry = nfs_readdir(s->nfs, dir)) != NULL) {
		json_begin(out, '{');
		json_kv_string(out, "name", entry->name);
		json_kv_string(out, "type", type_from_ftype3(entry->type));
		json_kv_mode(out, entry->mode);
		json_kv_u64(out, "size", entry->size);
		json_kv_id(out, "ino", entry->inode);
		json_kv_u64(out, "nlink", entry->nlink);
		json_kv_u64(out, "uid", entry->uid);
		json_kv_u64(out, "gid", entry->gid);
		json_kv_i64(out, "mtime", (int64_t)entry->mtime.tv_sec);
		json_kv_u64(out, "mtimeNsec", entry->mtime_nsec);
		json_end(out, '}');
	}
	json_end(out, ']');
	nfs_closedir(s->nfs, dir);
	return 0;
}

static int cmd_statvfs(struct session *s, char **argv, struct json *out)
{
	struct nfs_statvfs_64 sv;
	int rc = nfs_statvfs64(s->nfs, export_path(argv[1]), &sv);
	if (rc < 0)
		return fail_nfs(s, rc);
	json_kv_u64(out, "bsize", sv.f_bsize);
	json_kv_u64(out, "frsize", sv.f_frsize);
	json_kv_u64(out, "blocks", sv.f_blocks);
	json_kv_u64(out, "bfree", sv.f_bfree);
	json_kv_u64(out, "bavail", sv.f_bavail);
	json_kv_u64(out, "files", sv.f_files);
	json_kv_u64(out, "ffree", sv.f_ffree);
	json_kv_u64(out, "favail", sv.f_favail);
	json_kv_id(out, "fsid", sv.f_fsid);
	json_kv_u64(out, "flag", sv.f_flag);
	json_kv_u64(out, "namemax", sv.f_namemax);
	return 0;
}

/* Accept an access mask as octal digits (4=R_OK 2=W_OK 1=X_OK) or letters from "rwx". */
static bool parse_access_mode(const char *text, int *out)
{
	uint64_t value;
	if (parse_u64(text, 8, &value)) {
		if (value > 7)
			return false;
		*out = (int)value;
		return true;
	}
	int mode = 0;
	for (const char *p = text; *p != '\0'; p++) {
		switch (*p) {
		case 'r': mode |= R_OK; break;
		case 'w': mode |= W_OK; break;
		case 'x': mode |= X_OK; break;
		default: return false;
		}
	}
	if (text[0] == '\0')
		return false;
	*out = mode;
	return true;
}

static int cmd_access(struct session *s, char **argv, struct json *out)
{
	(void)out;
	int mode;
	if (!parse_access_mode(argv[2], &mode))
		return fail(s, EINVAL, "invalid access mode '%s' (expected 0-7 or letters rwx)",
			    argv[2]);
	int rc = nfs_access(s->nfs, export_path(argv[1]), mode);
	return rc < 0 ? fail_nfs(s, rc) : 0;
}

static int cmd_access2(struct session *s, char **argv, struct json *out)
{
	int rc = nfs_access2(s->nfs, export_path(argv[1]));
	if (rc < 0)
		return fail_nfs(s, rc);
	json_kv_u64(out, "mask", (uint64_t)rc);
	json_kv_bool(out, "read", (rc & R_OK) != 0);
	json_kv_bool(out, "write", (rc & W_OK) != 0);
	json_kv_bool(out, "execute", (rc & X_OK) != 0);
	return 0;
}

static int cmd_fsync(struct session *s, char **argv, struct json *out)
{
	(void)out;
	struct nfsfh *fh = NULL;
	int rc = nfs_open(s->nfs, argv[1], O_RDONLY, &fh);
	if (rc < 0)
		return fail_nfs(s, rc);
	rc = nfs_fsync(s->nfs, fh);
	if (rc < 0) {
		rc = fail_nfs(s, rc);
		nfs_close(s->nfs, fh);
		return rc;
	}
	rc = nfs_close(s->nfs, fh);
	return rc < 0 ? fail_nfs(s, rc) : 0;
}

typedef int (*command_fn)(struct session *s, char **argv, struct json *out);
typedef int (*command_argc_fn)(struct session *s, char **argv, int argc, struct json *out);

struct command {
	const char *name;
	/* Argument counts include the command name itself. */
	int min_args;
	int max_args;
	const char *usage;
	command_fn run;
	command_argc_fn run_argc;
};

static const struct command COMMANDS[] = {
	{ "stat", 2, 2, "stat PATH", cmd_stat, NULL },
	{ "stat_follow", 2, 2, "stat_follow PATH", cmd_stat_follow, NULL },
	{ "mkdir", 2, 3, "mkdir PATH [MODE]", cmd_mkdir, NULL },
	{ "rmdir", 2, 2, "rmdir PATH", cmd_rmdir, NULL },
	{ "unlink", 2, 2, "unlink PATH", cmd_unlink, NULL },
	{ "rename", 3, 3, "rename FROM TO", cmd_rename, NULL },
	{ "truncate", 3, 3, "truncate PATH SIZE", cmd_truncate, NULL },
	{ "symlink", 3, 3, "symlink TARGET LINKPATH", cmd_symlink, NULL },
	{ "readlink", 2, 2, "readlink PATH", cmd_readlink, NULL },
	{ "link", 3, 3, "link EXISTING NEWPATH", cmd_link, NULL },
	{ "chmod", 3, 3, "chmod PATH MODE", cmd_chmod, NULL },
	{ "chown", 4, 4, "chown PATH UID GID", cmd_chown, NULL },
	{ "lchown", 4, 4, "lchown PATH UID GID", cmd_lchown, NULL },
	{ "utimes", 2, 6, "utimes PATH [ATIME_SEC ATIME_USEC MTIME_SEC MTIME_USEC]", NULL,
	  cmd_utimes },
	{ "lutimes", 2, 6, "lutimes PATH [ATIME_SEC ATIME_USEC MTIME_SEC MTIME_USEC]", NULL,
	  cmd_lutimes },
	{ "create", 3, 3, "create PATH MODE", cmd_create, NULL },
	{ "create_excl", 3, 3, "create_excl PATH MODE", cmd_create_excl, NULL },
	{ "write", 4, 4, "write PATH OFFSET HEXDATA", cmd_write, NULL },
	{ "writefile", 3, 4, "writefile PATH LOCALPATH [MODE]", NULL, cmd_writefile },
	{ "read", 4, 4, "read PATH OFFSET COUNT", cmd_read, NULL },
	{ "readfile", 3, 3, "readfile PATH LOCALPATH", cmd_readfile, NULL },
	{ "ls", 2, 2, "ls PATH", cmd_ls, NULL },
	{ "statvfs", 2, 2, "statvfs PATH", cmd_statvfs, NULL },
	{ "access", 3, 3, "access PATH MODE", cmd_access, NULL },
	{ "access2", 2, 2, "access2 PATH", cmd_access2, NULL },
	{ "fsync", 2, 2, "fsync PATH", cmd_fsync, NULL },
};

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < sizeof(COMMANDS) / sizeof(COMMANDS[0]); i++) {
		if (strcmp(COMMANDS[i].name, name) == 0)
			return &COMMANDS[i];
	}
	return NULL;
}

/* Split line in place at TAB characters. Returns argc; argv ends with NULL. */
static int split_tabs(char *line, char ***argv_out)
{
	int argc = 1;
	for (const char *p = line; *p != '\0'; p++) {
		if (*p == '\t')
			argc++;
	}
	char **argv = calloc((size_t)argc + 1, sizeof(char *));
	if (argv == NULL) {
		fputs("aegis-nfs: out of memory\n", stderr);
		exit(3);
	}
	int i = 0;
	argv[i++] = line;
	for (char *p = line; *p != '\0'; p++) {
		if (*p == '\t') {
			*p = '\0';
			argv[i++] = p + 1;
		}
	}
	argv[argc] = NULL;
	*argv_out = argv;
	return argc;
}

static void run_line(struct session *s, char *line, struct json *out)
{
	char **argv;
	int argc = split_tabs(line, &argv);
	const struct command *command = find_command(argv[0]);
	int rc;

	session_clear_error(s);
	json_reset(out);
	json_begin(out, '{');
	json_kv_bool(out, "ok", true);

	if (command == NULL) {
		rc = fail(s, EINVAL, "unknown command '%s'", argv[0]);
	} else if (argc < command->min_args || argc > command->max_args) {
		rc = fail(s, EINVAL, "wrong number of arguments for %s (usage: %s)", argv[0],
			  command->usage);
	} else if (command->run != NULL) {
		rc = command->run(s, argv, out);
	} else {
		rc = command->run_argc(s, argv, argc, out);
	}

	if (rc < 0) {
		json_reset(out);
		json_begin(out, '{');
		json_kv_bool(out, "ok", false);
		json_kv_string(out, "error", s->error != NULL ? s->error : strerror(-rc));
		json_kv_i64(out, "errno", -rc);
	}
	json_end(out, '}');
	json_print_line(out);
	free(argv);
}

static int run_script(const char *url, int timeout_seconds)
{
	struct json out = { 0 };
	struct session s = { 0 };
	s.nfs = mount_url(url, timeout_seconds, &out);
	if (s.nfs == NULL) {
		free(out.data);
		return 1;
	}

	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while ((n = getline(&line, &cap, stdin)) >= 0) {
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		/* Blank lines are ignored and produce no output. */
		if (n == 0)
			continue;
		run_line(&s, line, &out);
	}
	free(line);
	session_clear_error(&s);
	free(out.data);
	nfs_umount(s.nfs);
	nfs_destroy_context(s.nfs);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Bench mode (libnfs async API)                                        */
/* ------------------------------------------------------------------ */

struct bench_options {
	const char *op;
	const char *path;
	uint64_t size;
	bool size_set;
	uint64_t chunk;
	int inflight;
	double seconds;
	bool seconds_set;
	uint64_t files;
	uint64_t entries;
	uint64_t max_ops;
	bool by_path;
	bool exclusive;
	bool fsync;
};

struct bench {
	struct nfs_context *nfs;
	const struct bench_options *opt;
	int inflight;
	uint64_t ops;
	uint64_t bytes;
	uint64_t entries;
	uint64_t issued;
	/* Most RPCs libnfs had queued or awaiting a reply at one time. */
	int peak_queue_length;
	/* Issuing stops at this monotonic time; in-flight requests still finish. */
	double deadline;
	bool stopped_by_time;
	int error;
	char *error_message;

	/* read / write / getattr */
	struct nfsfh *fh;
	uint64_t total;
	uint64_t next_offset;
	unsigned char *buffer;
	/* lookup: number of files stat'ed round-robin */
	uint64_t name_count;
};

/* Per-request state for reads and writes, which may be re-issued after a short reply. */
struct io_request {
	struct bench *b;
	uint64_t offset;
	uint64_t length;
	bool counted;
};

static void bench_fail(struct bench *b, int err, const char *message)
{
	if (b->error != 0)
		return;
	b->error = err > 0 ? err : EIO;
	b->error_message = strdup(message != NULL && message[0] != '\0' ? message : strerror(b->error));
}

static void bench_fail_nfs(struct bench *b, int rc, const char *what)
{
	char *message;
	if (asprintf(&message, "%s failed: %s", what, nfs_get_error(b->nfs)) < 0)
		message = NULL;
	bench_fail(b, -rc, message);
	free(message);
}

static bool bench_may_issue(struct bench *b)
{
	if (b->error != 0)
		return false;
	if (b->issued >= b->opt->max_ops)
		return false;
	if (monotonic_seconds() >= b->deadline) {
		b->stopped_by_time = true;
		return false;
	}
	return true;
}

static void bench_fill(struct bench *b);

static void io_issue(struct io_request *req);

static void io_done(int status, struct nfs_context *nfs, void *data, void *private_data)
{
	(void)nfs;
	struct io_request *req = private_data;
	struct bench *b = req->b;
	bool is_write = strcmp(b->opt->op, "write") == 0;

	if (status < 0) {
		char message[256];
		snprintf(message, sizeof(message), "%s at offset %" PRIu64 " failed: %s",
			 is_write ? "pwrite" : "pread", req->offset,
			 data != NULL ? (const char *)data : strerror(-status));
		bench_fail(b, -status, message);
	} else if (status == 0) {
		char message[128];
		snprintf(message, sizeof(message), "%s at offset %" PRIu64 " returned 0 bytes%s",
			 is_write ? "pwrite" : "pread", req->offset,
			 is_write ? "" : " (file shorter than --size)");
		bench_fail(b, EIO, message);
	} else {
		uint64_t n = (uint64_t)status < req->length ? (uint64_t)status : req->length;
		b->bytes += n;
		if (n < req->length && b->error == 0) {
			/* Short reply: request the rest of the same chunk. */
			req->offset += n;
			req->length -= n;
			io_issue(req);
			return;
		}
		b->ops++;
	}
	b->inflight--;
	free(req);
	bench_fill(b);
}

static void io_issue(struct io_request *req)
{
	struct bench *b = req->b;
	int rc;
	if (strcmp(b->opt->op, "write") == 0) {
		rc = nfs_pwrite_async(b->nfs, b->fh, req->offset, req->length, b->buffer, io_done,
				      req);
	} else {
		rc = nfs_pread_async(b->nfs, b->fh, req->offset, req->length, io_done, req);
	}
	if (rc < 0) {
		bench_fail_nfs(b, rc, "queueing an I/O request");
		b->inflight--;
		free(req);
	}
}

static void getattr_done(int status, struct nfs_context *nfs, void *data, void *private_data)
{
	(void)nfs;
	struct bench *b = private_data;
	b->inflight--;
	if (status < 0)
		bench_fail(b, -status, data);
	else
		b->ops++;
	bench_fill(b);
}

static void readdir_done(int status, struct nfs_context *nfs, void *data, void *private_data)
{
	struct bench *b = private_data;
	b->inflight--;
	if (status < 0) {
		bench_fail(b, -status, data);
	} else {
		struct nfsdir *dir = data;
		struct nfsdirent *entry;
		while ((entry = nfs_readdir(nfs, dir)) != NULL) {
			if (strcmp(entry->name, ".") != 0 && strcmp(entry->name, "..") != 0)
				b->entries++;
		}
		nfs_closedir(nfs, dir);
		b->ops++;
	}
	bench_fill(b);
}

static void close_done(int status, struct nfs_context *nfs, void *data, void *private_data)
{
	(void)nfs;
	struct bench *b = private_data;
	b->inflight--;
	if (status < 0)
		bench_fail(b, -status, data);
	else
		b->ops++;
	bench_fill(b);
}

static void create_done(int status, struct nfs_context *nfs, void *data, void *private_data)
{
	struct bench *b = private_data;
	if (status < 0) {
		b->inflight--;
		bench_fail(b, -status, data);
		bench_fill(b);
		return;
	}
	/* The slot stays in flight until the close completes. */
	int rc = nfs_close_async(nfs, data, close_done, b);
	if (rc < 0) {
		b->inflight--;
		bench_fail_nfs(b, rc, "queueing close");
	}
}

/* Queue requests until the in-flight limit, the work, the op count or the time is used up. */
static void bench_fill(struct bench *b)
{
	const char *op = b->opt->op;
	while (b->inflight < b->opt->inflight && bench_may_issue(b)) {
		int rc;
		char name[64];
		if (strcmp(op, "read") == 0 || strcmp(op, "write") == 0) {
			if (b->next_offset >= b->total)
				return;
			struct io_request *req = calloc(1, sizeof(*req));
			if (req == NULL) {
				bench_fail(b, ENOMEM, "out of memory");
				return;
			}
			req->b = b;
			req->offset = b->next_offset;
			req->length = b->total - b->next_offset < b->opt->chunk
				? b->total - b->next_offset : b->opt->chunk;
			b->next_offset += req->length;
			b->inflight++;
			b->issued++;
			io_issue(req);
			continue;
		}
		if (strcmp(op, "getattr") == 0 && !b->opt->by_path) {
			rc = nfs_fstat64_async(b->nfs, b->fh, getattr_done, b);
		} else if (strcmp(op, "getattr") == 0) {
			rc = nfs_stat64_async(b->nfs, b->opt->path, getattr_done, b);
		} else if (strcmp(op, "lookup") == 0) {
			snprintf(name, sizeof(name), "f%06" PRIu64, b->issued % b->name_count);
			rc = nfs_lstat64_async(b->nfs, name, getattr_done, b);
		} else if (strcmp(op, "create") == 0) {
			snprintf(name, sizeof(name), "c%08" PRIu64, b->issued);
			int flags = O_WRONLY | (b->opt->exclusive ? O_EXCL : 0);
			rc = nfs_create_async(b->nfs, name, flags, 0644, create_done, b);
		} else {
			/* The working directory is the directory being listed. */
			rc = nfs_opendir_async(b->nfs, ".", readdir_done, b);
		}
		if (rc < 0) {
			bench_fail_nfs(b, rc, "queueing a request");
			return;
		}
		b->inflight++;
		b->issued++;
	}
}

/*
 * Run the poll loop until no request is in flight. The loop also calls
 * nfs_service() every 100 ms without events, because libnfs checks RPC
 * timeouts there when the async API is used.
 */
static void bench_drain(struct bench *b)
{
	while (b->inflight > 0) {
		int queued = nfs_queue_length(b->nfs);
		if (queued > b->peak_queue_length)
			b->peak_queue_length = queued;
		struct pollfd pfd = {
			.fd = nfs_get_fd(b->nfs),
			.events = (short)nfs_which_events(b->nfs),
		};
		int rc = poll(&pfd, 1, 100);
		if (rc < 0 && errno != EINTR) {
			bench_fail(b, errno, "poll failed");
			return;
		}
		if (nfs_service(b->nfs, rc > 0 ? pfd.revents : 0) < 0) {
			bench_fail_nfs(b, -EIO, "nfs_service (connection lost)");
			return;
		}
	}
}

static void print_bench_error(const struct bench_options *opt, int err, const char *message)
{
	struct json out = { 0 };
	json_begin(&out, '{');
	json_kv_string(&out, "op", opt->op);
	json_kv_bool(&out, "ok", false);
	json_kv_string(&out, "error", message != NULL ? message : strerror(err));
	json_kv_i64(&out, "errno", err);
	json_end(&out, '}');
	json_print_line(&out);
	free(out.data);
}

/* Print the error for a failed synchronous setup call and return the exit code. */
static int setup_failed(struct nfs_context *nfs, const struct bench_options *opt, int rc,
			const char *what, const char *path)
{
	char *message;
	if (asprintf(&message, "%s '%s' failed: %s", what, path, nfs_get_error(nfs)) < 0)
		message = NULL;
	print_bench_error(opt, -rc, message);
	free(message);
	return 1;
}

/* Index of a bench file name: prefix followed by exactly six digits, or -1. */
static int64_t bench_name_index(const char *name, char prefix)
{
	if (name[0] != prefix || strlen(name) != 7)
		return -1;
	int64_t index = 0;
	for (int i = 1; i < 7; i++) {
		if (name[i] < '0' || name[i] > '9')
			return -1;
		index = index * 10 + (name[i] - '0');
	}
	return index;
}

/*
 * Make dir the working directory and make sure it contains the files
 * PREFIX000000 .. PREFIX(count-1). Only missing names are created, so a rerun
 * against the same directory starts quickly.
 */
static int prepare_directory(struct nfs_context *nfs, const struct bench_options *opt,
			     const char *dir, char prefix, uint64_t count)
{
	int rc = nfs_mkdir2(nfs, dir, 0755);
	if (rc < 0 && rc != -EEXIST)
		return setup_failed(nfs, opt, rc, "mkdir", dir);
	rc = nfs_chdir(nfs, dir);
	if (rc < 0)
		return setup_failed(nfs, opt, rc, "chdir", dir);

	bool *present = calloc(count > 0 ? count : 1, sizeof(bool));
	if (present == NULL) {
		print_bench_error(opt, ENOMEM, "out of memory");
		return 1;
	}
	struct nfsdir *listing = NULL;
	rc = nfs_opendir(nfs, ".", &listing);
	if (rc < 0) {
		free(present);
		return setup_failed(nfs, opt, rc, "opendir", dir);
	}
	struct nfsdirent *entry;
	while ((entry = nfs_readdir(nfs, listing)) != NULL) {
		int64_t index = bench_name_index(entry->name, prefix);
		if (index >= 0 && (uint64_t)index < count)
			present[index] = true;
	}
	nfs_closedir(nfs, listing);

	for (uint64_t i = 0; i < count; i++) {
		if (present[i])
			continue;
		char name[32];
		snprintf(name, sizeof(name), "%c%06" PRIu64, prefix, i);
		struct nfsfh *fh = NULL;
		rc = nfs_create(nfs, name, O_WRONLY | O_EXCL, 0644, &fh);
		if (rc < 0 && rc != -EEXIST) {
			free(present);
			return setup_failed(nfs, opt, rc, "create", name);
		}
		if (rc == 0)
			nfs_close(nfs, fh);
	}
	free(present);
	return 0;
}

static void fill_pattern(unsigned char *buf, uint64_t len)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	for (uint64_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (unsigned char)x;
	}
}

static void print_bench_result(const struct bench *b, double seconds, bool complete)
{
	const struct bench_options *opt = b->opt;
	struct json out = { 0 };
	json_begin(&out, '{');
	json_kv_string(&out, "op", opt->op);
	json_kv_bool(&out, "ok", true);
	json_kv_u64(&out, "ops", b->ops);
	json_kv_u64(&out, "bytes", b->bytes);
	json_kv_double(&out, "seconds", seconds);
	json_kv_double(&out, "opsPerSecond", seconds > 0 ? (double)b->ops / seconds : 0);
	json_kv_double(&out, "mibPerSecond",
		       seconds > 0 ? (double)b->bytes / (double)MIB / seconds : 0);
	json_kv_i64(&out, "inflight", opt->inflight);
	json_kv_i64(&out, "peakQueueLength", b->peak_queue_length);
	json_kv_string(&out, "path", opt->path);
	if (strcmp(opt->op, "read") == 0 || strcmp(opt->op, "write") == 0) {
		json_kv_u64(&out, "size", b->total);
		json_kv_u64(&out, "chunk", opt->chunk);
		json_kv_bool(&out, "complete", complete);
	}
	if (strcmp(opt->op, "write") == 0)
		json_kv_bool(&out, "fsync", opt->fsync);
	if (strcmp(opt->op, "lookup") == 0)
		json_kv_u64(&out, "files", opt->files);
	if (strcmp(opt->op, "readdirplus") == 0) {
		json_kv_u64(&out, "entries", b->entries);
		json_kv_double(&out, "entriesPerSecond",
			       seconds > 0 ? (double)b->entries / seconds : 0);
	}
	json_end(&out, '}');
	json_print_line(&out);
	free(out.data);
}

/* Open and prepare what the op needs; the time spent here is not measured. */
static int bench_setup(struct bench *b)
{
	const struct bench_options *opt = b->opt;
	struct nfs_context *nfs = b->nfs;
	const char *op = opt->op;
	int rc;

	if (strcmp(op, "write") == 0) {
		b->total = opt->size;
		b->buffer = malloc(opt->chunk);
		if (b->buffer == NULL) {
			print_bench_error(opt, ENOMEM, "out of memory for the write buffer");
			return 1;
		}
		fill_pattern(b->buffer, opt->chunk);
		rc = nfs_open2(nfs, opt->path, O_WRONLY | O_CREAT | O_TRUNC, 0644, &b->fh);
		if (rc < 0)
			return setup_failed(nfs, opt, rc, "create", opt->path);
	} else if (strcmp(op, "read") == 0) {
		rc = nfs_open(nfs, opt->path, O_RDONLY, &b->fh);
		if (rc < 0)
			return setup_failed(nfs, opt, rc, "open", opt->path);
		struct nfs_stat_64 st;
		rc = nfs_fstat64(nfs, b->fh, &st);
		if (rc < 0)
			return setup_failed(nfs, opt, rc, "fstat", opt->path);
		b->total = st.nfs_size;
		if (opt->size_set) {
			if (opt->size > st.nfs_size) {
				char message[160];
				snprintf(message, sizeof(message),
					 "--size %" PRIu64 " is larger than the file (%" PRIu64 " bytes)",
					 opt->size, st.nfs_size);
				print_bench_error(opt, EINVAL, message);
				return 2;
			}
			b->total = opt->size;
		}
	} else if (strcmp(op, "getattr") == 0) {
		/* O_CREAT without O_TRUNC creates the file only if it is missing. */
		rc = nfs_open2(nfs, opt->path, O_RDONLY | O_CREAT, 0644, &b->fh);
		if (rc < 0)
			return setup_failed(nfs, opt, rc, "open", opt->path);
	} else if (strcmp(op, "lookup") == 0) {
		b->name_count = opt->files;
		return prepare_directory(nfs, opt, opt->path, 'f', opt->files);
	} else if (strcmp(op, "create") == 0) {
		rc = nfs_mkdir2(nfs, opt->path, 0755);
		if (rc < 0)
			return setup_failed(nfs, opt, rc, "mkdir", opt->path);
		rc = nfs_chdir(nfs, opt->path);
		if (rc < 0)
			return setup_failed(nfs, opt, rc, "chdir", opt->path);
	} else {
		/* bench_main accepts only the ops above, so this is readdirplus. */
		return prepare_directory(nfs, opt, opt->path, 'e', opt->entries);
	}
	return 0;
}

static int run_bench(const char *url, const struct bench_options *opt, int timeout_seconds)
{
	struct json out = { 0 };
	struct nfs_context *nfs = mount_url(url, timeout_seconds, &out);
	free(out.data);
	if (nfs == NULL)
		return 1;

	struct bench b = { 0 };
	b.nfs = nfs;
	b.opt = opt;
	int exit_code = bench_setup(&b);
	if (exit_code != 0)
		goto done;

	double start = monotonic_seconds();
	b.deadline = start + opt->seconds;
	bench_fill(&b);
	bench_drain(&b);
	if (b.error == 0 && strcmp(opt->op, "write") == 0 && opt->fsync) {
		/* Counted in the time: a kernel client also commits on close. */
		int rc = nfs_fsync(nfs, b.fh);
		if (rc < 0)
			bench_fail_nfs(&b, rc, "fsync");
	}
	double seconds = monotonic_seconds() - start;

	if (b.error != 0) {
		print_bench_error(opt, b.error, b.error_message);
		exit_code = 1;
	} else {
		bool complete = b.next_offset >= b.total && b.ops > 0;
		if (b.total == 0)
			complete = true;
		print_bench_result(&b, seconds, complete);
	}

done:
	if (b.fh != NULL)
		nfs_close(nfs, b.fh);
	free(b.buffer);
	free(b.error_message);
	nfs_umount(nfs);
	nfs_destroy_context(nfs);
	return exit_code;
}

/* ------------------------------------------------------------------ */
/* Command line                                                         */
/* ------------------------------------------------------------------ */

static void usage(FILE *to)
{
	fputs(
		"usage: aegis-nfs [--timeout SECONDS] URL < commands\n"
		"       aegis-nfs --bench URL OP [options]\n"
		"\n"
		"URL is nfs://HOST/EXPORT?nfsport=PORT&mountport=PORT (libnfs URL arguments).\n"
		"Script mode reads one command per line, arguments separated by TAB, and prints\n"
		"one JSON object per command. Commands:\n", to);
	for (size_t i = 0; i < sizeof(COMMANDS) / sizeof(COMMANDS[0]); i++)
		fprintf(to, "  %s\n", COMMANDS[i].usage);
	fputs(
		"\n"
		"Bench ops: read, write, getattr, lookup, create, readdirplus. Options:\n"
		"  --path NAME     file or directory inside the export (default per op)\n"
		"  --size BYTES    bytes to write; for read, bytes to read (default: file size)\n"
		"  --chunk BYTES   bytes per read or write request (default 1M)\n"
		"  --inflight N    requests in flight at once (default 4)\n"
		"  --seconds S     duration of getattr/lookup/create/readdirplus (default 5);\n"
		"                  time limit of read/write (default 300)\n"
		"  --max-ops N     upper bound on requests issued (default 100000000)\n"
		"  --files N       lookup: number of files to stat round-robin (default 1000)\n"
		"  --entries N     readdirplus: entries in the listed directory (default 1000)\n"
		"  --by-path       getattr: stat the path each time instead of fstat\n"
		"  --excl          create: use exclusive create (O_EXCL)\n"
		"  --no-fsync      write: do not COMMIT at the end\n"
		"  --timeout S     RPC timeout in seconds (default 30)\n"
		"BYTES accepts a K, M or G suffix (powers of 1024).\n", to);
}

static bool parse_timeout(const char *text, int *out)
{
	uint64_t value;
	if (!parse_u64(text, 10, &value) || value == 0 || value > 86400)
		return false;
	*out = (int)value;
	return true;
}

static int bench_main(int argc, char **argv)
{
	if (argc < 4) {
		usage(stderr);
		return 2;
	}
	const char *url = argv[2];
	struct bench_options opt = {
		.op = argv[3],
		.chunk = MIB,
		.inflight = 4,
		.seconds = 5,
		.files = 1000,
		.entries = 1000,
		.max_ops = 100000000ULL,
		.fsync = true,
	};
	int timeout_seconds = DEFAULT_TIMEOUT_SECONDS;

	for (int i = 4; i < argc; i++) {
		const char *arg = argv[i];
		const char *value = i + 1 < argc ? argv[i + 1] : NULL;
		bool takes_value = true;
		bool valid = value != NULL;
		uint64_t number = 0;

		if (strcmp(arg, "--by-path") == 0) {
			opt.by_path = true;
			takes_value = false;
		} else if (strcmp(arg, "--excl") == 0) {
			opt.exclusive = true;
			takes_value = false;
		} else if (strcmp(arg, "--no-fsync") == 0) {
			opt.fsync = false;
			takes_value = false;
		} else if (strcmp(arg, "--path") == 0) {
			if (valid)
				opt.path = value;
		} else if (strcmp(arg, "--size") == 0) {
			valid = valid && parse_size(value, &opt.size);
			opt.size_set = true;
		} else if (strcmp(arg, "--chunk") == 0) {
			valid = valid && parse_size(value, &opt.chunk) && opt.chunk > 0 &&
				opt.chunk <= 64 * MIB;
		} else if (strcmp(arg, "--inflight") == 0) {
			valid = valid && parse_u64(value, 10, &number) && number >= 1 &&
				number <= 1024;
			opt.inflight = (int)number;
		} else if (strcmp(arg, "--seconds") == 0) {
			char *end;
			opt.seconds = valid ? strtod(value, &end) : 0;
			valid = valid && *end == '\0' && opt.seconds > 0 && opt.seconds <= 86400;
			opt.seconds_set = true;
		} else if (strcmp(arg, "--max-ops") == 0) {
			valid = valid && parse_u64(value, 10, &opt.max_ops) && opt.max_ops > 0;
		} else if (strcmp(arg, "--files") == 0) {
			valid = valid && parse_u64(value, 10, &opt.files) && opt.files > 0 &&
				opt.files <= 1000000;
		} else if (strcmp(arg, "--entries") == 0) {
			valid = valid && parse_u64(value, 10, &opt.entries) &&
				opt.entries <= 1000000;
		} else if (strcmp(arg, "--timeout") == 0) {
			valid = valid && parse_timeout(value, &timeout_seconds);
		} else {
			fprintf(stderr, "aegis-nfs: unknown bench option '%s'\n", arg);
			usage(stderr);
			return 2;
		}
		if (takes_value && !valid) {
			fprintf(stderr, "aegis-nfs: missing or invalid value for %s\n", arg);
			return 2;
		}
		if (takes_value)
			i++;
	}

	static const char *const ops[] = { "read", "write", "getattr", "lookup", "create",
					   "readdirplus" };
	bool known_op = false;
	for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++)
		known_op = known_op || strcmp(opt.op, ops[k]) == 0;
	if (!known_op) {
		char message[160];
		snprintf(message, sizeof(message),
			 "unknown bench op '%s' (expected read, write, getattr, lookup, create "
			 "or readdirplus)", opt.op);
		print_bench_error(&opt, EINVAL, message);
		return 2;
	}
	if (strcmp(opt.op, "write") == 0 && !opt.size_set) {
		print_bench_error(&opt, EINVAL, "write needs --size BYTES");
		return 2;
	}

	bool is_transfer = strcmp(opt.op, "read") == 0 || strcmp(opt.op, "write") == 0;
	if (is_transfer && !opt.seconds_set)
		opt.seconds = 300;

	char default_path[96];
	if (opt.path == NULL) {
		if (is_transfer) {
			opt.path = "aegis-bench.dat";
		} else if (strcmp(opt.op, "getattr") == 0) {
			opt.path = "aegis-bench-getattr";
		} else if (strcmp(opt.op, "lookup") == 0) {
			opt.path = "aegis-bench-lookup";
		} else if (strcmp(opt.op, "readdirplus") == 0) {
			opt.path = "aegis-bench-readdir";
		} else {
			/* create needs a directory that does not exist yet, so the default name is unique per run. */
			struct timespec now;
			clock_gettime(CLOCK_REALTIME, &now);
			snprintf(default_path, sizeof(default_path), "aegis-bench-create.%ld.%ld",
				 (long)getpid(), (long)now.tv_sec);
			opt.path = default_path;
		}
	}
	return run_bench(url, &opt, timeout_seconds);
}

int main(int argc, char **argv)
{
	/* A dropped server connection or a closed stdout must yield an error, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);

	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "--bench") == 0)
		return bench_main(argc, argv);

	int timeout_seconds = DEFAULT_TIMEOUT_SECONDS;
	int i = 1;
	if (argc >= 3 && strcmp(argv[1], "--timeout") == 0) {
		if (!parse_timeout(argv[2], &timeout_seconds)) {
			fprintf(stderr, "aegis-nfs: invalid --timeout '%s' (seconds, 1..86400)\n",
				argv[2]);
			return 2;
		}
		i = 3;
	}
	if (argc != i + 1) {
		usage(stderr);
		return 2;
	}
	return run_script(argv[i], timeout_seconds);
}
