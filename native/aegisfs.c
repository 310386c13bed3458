// Directory-relative file system calls for the LocalHost provider.
//
// Node's fs module resolves whole paths and follows symlinks in every directory component, and its
// utimes() takes seconds as a double (about 240 ns of precision today). AegisFSAL needs the *at()
// family, so that every lookup happens relative to an open directory with O_NOFOLLOW, and
// nanosecond timestamps. Every function here is synchronous: these are metadata calls that finish
// in microseconds on a local file system. Errors are thrown as Error objects with `code` (the
// errno name, e.g. "ENOENT") and `errno` (the positive number), like Node's own.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define NAME_BYTES_MAX 4096

static napi_value throw_errno(napi_env env, int err, const char *syscall) {
  const char *name = strerrorname_np(err);
  char message[256];
  snprintf(message, sizeof message, "%s: %s", syscall, strerror(err));
  napi_value msg, error, code, number;
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, NULL, msg, &error);
  napi_create_string_utf8(env, name ? name : "EUNKNOWN", NAPI_AUTO_LENGTH, &code);
  napi_create_int32(env, err, &number);
  napi_set_named_property(env, error, "code", code);
  napi_set_named_property(env, error, "errno", number);
  napi_set_named_property(env, error, "syscall", msg);
  napi_throw(env, error);
  return NULL;
}

static napi_value throw_type(napi_env env, const char *message) {
  napi_throw_type_error(env, NULL, message);
  return NULL;
}

// Copies a string or Buffer argument into `out` as a NUL-terminated byte string. A Buffer keeps
// names that are not valid UTF-8 intact. Embedded NUL bytes are rejected.
static int get_name(napi_env env, napi_value value, char *out, size_t out_size) {
  bool is_buffer = false;
  napi_is_buffer(env, value, &is_buffer);
  if (is_buffer) {
    void *data;
    size_t length;
    napi_get_buffer_info(env, value, &data, &length);
    if (length >= out_size || memchr(data, 0, length) != NULL) return -1;
    memcpy(out, data, length);
    out[length] = 0;
    return 0;
  }
  size_t length;
  if (napi_get_value_string_utf8(env, value, out, out_size, &length) != napi_ok) return -1;
  if (length >= out_size - 1 || strlen(out) != length) return -1;
  return 0;
}

static int get_int(napi_env env, napi_value value, int64_t *out) {
  return napi_get_value_int64(env, value, out) == napi_ok ? 0 : -1;
}

static napi_value make_int(napi_env env, int64_t value) {
  napi_value result;
  napi_create_int64(env, value, &result);
  return result;
}

static napi_value make_undefined(napi_env env) {
  napi_value result;
  napi_get_undefined(env, &result);
  return result;
}

#define ARGS(n)                                                      \
  size_t argc = n;                                                   \
  napi_value argv[n];                                                \
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);              \
  if (argc < n) return throw_type(env, "missing arguments");

#define NAME_ARG(var, index)                                         \
  char var[NAME_BYTES_MAX];                                          \
  if (get_name(env, argv[index], var, sizeof var) != 0)              \
    return throw_type(env, "invalid name argument");

#define INT_ARG(var, index)                                          \
  int64_t var;                                                       \
  if (get_int(env, argv[index], &var) != 0)                          \
    return throw_type(env, "invalid integer argument");

// Layout of the Float64Array filled by fstatat()/fstat(); mirrored in native.ts.
enum {
  ST_MODE, ST_NLINK, ST_UID, ST_GID, ST_SIZE, ST_USED, ST_RDEV_MAJOR, ST_RDEV_MINOR,
  ST_DEV_MAJOR, ST_DEV_MINOR, ST_INO_HIGH, ST_INO_LOW, ST_ATIME_SEC, ST_ATIME_NSEC,
  ST_MTIME_SEC, ST_MTIME_NSEC, ST_CTIME_SEC, ST_CTIME_NSEC, ST_BTIME_SEC, ST_BTIME_NSEC,
  ST_FIELDS
};

static napi_value fill_stat(napi_env env, napi_value target, const struct statx *stx) {
  napi_typedarray_type type;
  size_t length;
  void *data;
  napi_get_typedarray_info(env, target, &type, &length, &data, NULL, NULL);
  if (type != napi_float64_array || length < ST_FIELDS) return throw_type(env, "stat target must be a Float64Array(20)");
  double *out = data;
  out[ST_MODE] = stx->stx_mode;
  out[ST_NLINK] = stx->stx_nlink;
  out[ST_UID] = stx->stx_uid;
  out[ST_GID] = stx->stx_gid;
  out[ST_SIZE] = (double)stx->stx_size;
  out[ST_USED] = (double)stx->stx_blocks * 512.0;
  out[ST_RDEV_MAJOR] = stx->stx_rdev_major;
  out[ST_RDEV_MINOR] = stx->stx_rdev_minor;
  out[ST_DEV_MAJOR] = stx->stx_dev_major;
  out[ST_DEV_MINOR] = stx->stx_dev_minor;
  out[ST_INO_HIGH] = (double)(stx->stx_ino >> 32);
  out[ST_INO_LOW] = (double)(stx->stx_ino & 0xffffffffu);
  out[ST_ATIME_SEC] = (double)stx->stx_atime.tv_sec;
  out[ST_ATIME_NSEC] = stx->stx_atime.tv_nsec;
  out[ST_MTIME_SEC] = (double)stx->stx_mtime.tv_sec;
  out[ST_MTIME_NSEC] = stx->stx_mtime.tv_nsec;
  out[ST_CTIME_SEC] = (double)stx->stx_ctime.tv_sec;
  out[ST_CTIME_NSEC] = stx->stx_ctime.tv_nsec;
  if (stx->stx_mask & STATX_BTIME) {
    out[ST_BTIME_SEC] = (double)stx->stx_btime.tv_sec;
    out[ST_BTIME_NSEC] = stx->stx_btime.tv_nsec;
  } else {
    out[ST_BTIME_SEC] = 0;
    out[ST_BTIME_NSEC] = 0;
  }
  return make_undefined(env);
}

// fstatat(dirfd, name, flags, target: Float64Array): statx() relative to dirfd.
static napi_value js_fstatat(napi_env env, napi_callback_info info) {
  ARGS(4);
  INT_ARG(dirfd, 0);
  NAME_ARG(name, 1);
  INT_ARG(flags, 2);
  struct statx stx;
  if (statx((int)dirfd, name, (int)flags | AT_STATX_SYNC_AS_STAT, STATX_BASIC_STATS | STATX_BTIME, &stx) != 0)
    return throw_errno(env, errno, "statx");
  return fill_stat(env, argv[3], &stx);
}

// fstat(fd, target: Float64Array)
static napi_value js_fstat(napi_env env, napi_callback_info info) {
  ARGS(2);
  INT_ARG(fd, 0);
  struct statx stx;
  if (statx((int)fd, "", AT_EMPTY_PATH | AT_STATX_SYNC_AS_STAT, STATX_BASIC_STATS | STATX_BTIME, &stx) != 0)
    return throw_errno(env, errno, "statx");
  return fill_stat(env, argv[1], &stx);
}

// openat(dirfd, name, flags, mode) -> fd. O_CLOEXEC is always added.
static napi_value js_openat(napi_env env, napi_callback_info info) {
  ARGS(4);
  INT_ARG(dirfd, 0);
  NAME_ARG(name, 1);
  INT_ARG(flags, 2);
  INT_ARG(mode, 3);
  int fd = openat((int)dirfd, name, (int)flags | O_CLOEXEC, (mode_t)mode);
  if (fd < 0) return throw_errno(env, errno, "openat");
  return make_int(env, fd);
}

static napi_value js_mkdirat(napi_env env, napi_callback_info info) {
  ARGS(3);
  INT_ARG(dirfd, 0);
  NAME_ARG(name, 1);
  INT_ARG(mode, 2);
  if (mkdirat((int)dirfd, name, (mode_t)mode) != 0) return throw_errno(env, errno, "mkdirat");
  return make_undefined(env);
}

// unlinkat(dirfd, name, flags); flags AT_REMOVEDIR removes a directory.
static napi_value js_unlinkat(napi_env env, napi_callback_info info) {
  ARGS(3);
  INT_ARG(dirfd, 0);
  NAME_ARG(name, 1);
  INT_ARG(flags, 2);
  if (unlinkat((int)dirfd, name, (int)flags) != 0) return throw_errno(env, errno, "unlinkat");
  return make_undefined(env);
}

// renameat2(olddirfd, oldname, newdirfd, newname, flags); flags RENAME_NOREPLACE refuses to
// replace an existing target.
static napi_value js_renameat2(napi_env env, napi_callback_info info) {
  ARGS(5);
  INT_ARG(olddirfd, 0);
  NAME_ARG(oldname, 1);
  INT_ARG(newdirfd, 2);
  NAME_ARG(newname, 3);
  INT_ARG(flags, 4);
  if (renameat2((int)olddirfd, oldname, (int)newdirfd, newname, (unsigned int)flags) != 0)
    return throw_errno(env, errno, "renameat2");
  return make_undefined(env);
}

// linkat(olddirfd, oldname, newdirfd, newname, flags); with flags 0 a symlink is not followed.
static napi_value js_linkat(napi_env env, napi_callback_info info) {
  ARGS(5);
  INT_ARG(olddirfd, 0);
  NAME_ARG(oldname, 1);
  INT_ARG(newdirfd, 2);
  NAME_ARG(newname, 3);
  INT_ARG(flags, 4);
  if (linkat((int)olddirfd, oldname, (int)newdirfd, newname, (int)flags) != 0)
    return throw_errno(env, errno, "linkat");
  return make_undefined(env);
}

// symlinkat(target, dirfd, name)
static napi_value js_symlinkat(napi_env env, napi_callback_info info) {
  ARGS(3);
  NAME_ARG(target, 0);
  INT_ARG(dirfd, 1);
  NAME_ARG(name, 2);
  if (symlinkat(target, (int)dirfd, name) != 0) return throw_errno(env, errno, "symlinkat");
  return make_undefined(env);
}

// readlinkat(dirfd, name) -> Buffer with the raw target bytes.
static napi_value js_readlinkat(napi_env env, napi_callback_info info) {
  ARGS(2);
  INT_ARG(dirfd, 0);
  NAME_ARG(name, 1);
  char target[PATH_MAX];
  ssize_t length = readlinkat((int)dirfd, name, target, sizeof target);
  if (length < 0) return throw_errno(env, errno, "readlinkat");
  napi_value result;
  void *data;
  napi_create_buffer_copy(env, (size_t)length, target, &data, &result);
  return result;
}

// Maps the JavaScript markers -1 and -2 to UTIME_NOW and UTIME_OMIT.
static long special_nsec(int64_t nsec) {
  if (nsec == -1) return UTIME_NOW;
  if (nsec == -2) return UTIME_OMIT;
  return (long)nsec;
}

// utimensat(dirfd, name, atimeSec, atimeNsec, mtimeSec, mtimeNsec, flags). A nanosecond value of
// -1 means UTIME_NOW and -2 means UTIME_OMIT.
static napi_value js_utimensat(napi_env env, napi_callback_info info) {
  ARGS(7);
  INT_ARG(dirfd, 0);
  NAME_ARG(name, 1);
  INT_ARG(atime_sec, 2);
  INT_ARG(atime_nsec, 3);
  INT_ARG(mtime_sec, 4);
  INT_ARG(mtime_nsec, 5);
  INT_ARG(flags, 6);
  struct timespec times[2];
  times[0].tv_sec = atime_sec;
  times[0].tv_nsec = special_nsec(atime_nsec);
  times[1].tv_sec = mtime_sec;
  times[1].tv_nsec = special_nsec(mtime_nsec);
  const char *path = name[0] ? name : NULL;
  int result = path ? utimensat((int)dirfd, path, times, (int)flags) : futimens((int)dirfd, times);
  if (result != 0) return throw_errno(env, errno, "utimensat");
  return make_undefined(env);
}

// fchmodat(dirfd, name, mode, flags); with AT_SYMLINK_NOFOLLOW glibc refuses symlinks (EOPNOTSUPP).
static napi_value js_fchmodat(napi_env env, napi_callback_info info) {
  ARGS(4);
  INT_ARG(dirfd, 0);
  NAME_ARG(name, 1);
  INT_ARG(mode, 2);
  INT_ARG(flags, 3);
  if (fchmodat((int)dirfd, name, (mode_t)mode, (int)flags) != 0) return throw_errno(env, errno, "fchmodat");
  return make_undefined(env);
}

// fdLocation(fd) -> Buffer: the location the kernel reports for an open descriptor's object, read from
// /proc/self/fd/<fd> (with " (deleted)" appended when its name was removed).
static int proc_fd_dir = -1;

static napi_value js_fd_location(napi_env env, napi_callback_info info) {
  ARGS(1);
  INT_ARG(fd, 0);
  // Resolving /proc/self/fd once and reading entries relative to it halves the cost of a lookup.
  if (proc_fd_dir < 0) {
    proc_fd_dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (proc_fd_dir < 0) return throw_errno(env, errno, "open /proc/self/fd");
  }
  char link[32];
  snprintf(link, sizeof link, "%d", (int)fd);
  char target[PATH_MAX];
  ssize_t length = readlinkat(proc_fd_dir, link, target, sizeof target);
  if (length < 0) return throw_errno(env, errno, "readlink");
  napi_value result;
  void *data;
  napi_create_buffer_copy(env, (size_t)length, target, &data, &result);
  return result;
}

// fstatvfs(fd) -> [blockSize, blocks, blocksFree, blocksAvailable, files, filesFree, filesAvailable]
static napi_value js_fstatvfs(napi_env env, napi_callback_info info) {
  ARGS(1);
  INT_ARG(fd, 0);
  struct statvfs vfs;
  if (fstatvfs((int)fd, &vfs) != 0) return throw_errno(env, errno, "fstatvfs");
  double values[7] = {
    (double)vfs.f_frsize, (double)vfs.f_blocks, (double)vfs.f_bfree, (double)vfs.f_bavail,
    (double)vfs.f_files, (double)vfs.f_ffree, (double)vfs.f_favail,
  };
  napi_value result;
  napi_create_array_with_length(env, 7, &result);
  for (uint32_t i = 0; i < 7; i++) {
    napi_value element;
    napi_create_double(env, values[i], &element);
    napi_set_element(env, result, i, element);
  }
  return result;
}

// readdir(dirfd) -> Array<Buffer> of every name except "." and "..", in directory order. The
// caller's descriptor is left open and its offset untouched (a duplicate is read).
static napi_value js_readdir(napi_env env, napi_callback_info info) {
  ARGS(1);
  INT_ARG(dirfd, 0);
  int fd = openat((int)dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return throw_errno(env, errno, "openat");
  DIR *dir = fdopendir(fd);
  if (dir == NULL) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "fdopendir");
  }
  napi_value result;
  napi_create_array(env, &result);
  uint32_t index = 0;
  for (;;) {
    errno = 0;
    struct dirent *entry = readdir(dir);
    if (entry == NULL) {
      int err = errno;
      closedir(dir);
      if (err != 0) return throw_errno(env, err, "readdir");
      return result;
    }
    const char *name = entry->d_name;
    if (name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0))) continue;
    napi_value buffer;
    void *data;
    napi_create_buffer_copy(env, strlen(name), name, &data, &buffer);
    napi_set_element(env, result, index++, buffer);
  }
}


// Asynchronous variants of the calls that change a directory. On a journaling file system they can
// wait for the journal (hundreds of microseconds to milliseconds), so they run on libuv's thread
// pool and settle a promise, keeping the event loop free for other requests.

enum async_op { OP_OPEN_CREATE, OP_MKDIR, OP_UNLINK, OP_RENAME, OP_LINK, OP_SYMLINK };

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  enum async_op op;
  int dirfd;
  int dirfd2;
  int flags;
  int mode;
  int result;
  int error;
  char name[NAME_BYTES_MAX];
  char name2[NAME_BYTES_MAX];
} async_call;

static void async_execute(napi_env env, void *data) {
  async_call *call = data;
  int result = 0;
  switch (call->op) {
    case OP_OPEN_CREATE:
      result = openat(call->dirfd, call->name, call->flags | O_CLOEXEC, (mode_t)call->mode);
      if (result >= 0) {
        close(result);
        result = 0;
      }
      break;
    case OP_MKDIR:
      result = mkdirat(call->dirfd, call->name, (mode_t)call->mode);
      break;
    case OP_UNLINK:
      result = unlinkat(call->dirfd, call->name, call->flags);
      break;
    case OP_RENAME:
      result = renameat2(call->dirfd, call->name, call->dirfd2, call->name2, (unsigned int)call->flags);
      break;
    case OP_LINK:
      result = linkat(call->dirfd, call->name, call->dirfd2, call->name2, call->flags);
      break;
    case OP_SYMLINK:
      result = symlinkat(call->name2, call->dirfd, call->name);
      break;
  }
  call->result = result;
  call->error = result < 0 ? errno : 0;
}

static const char *async_syscall_name(enum async_op op) {
  static const char *names[] = {"openat", "mkdirat", "unlinkat", "renameat2", "linkat", "symlinkat"};
  return names[op];
}

static void async_complete(napi_env env, napi_status status, void *data) {
  async_call *call = data;
  if (call->error != 0) {
    const char *name = strerrorname_np(call->error);
    char message[256];
    snprintf(message, sizeof message, "%s: %s", async_syscall_name(call->op), strerror(call->error));
    napi_value msg, error, code, number;
    napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &error);
    napi_create_string_utf8(env, name ? name : "EUNKNOWN", NAPI_AUTO_LENGTH, &code);
    napi_create_int32(env, call->error, &number);
    napi_set_named_property(env, error, "code", code);
    napi_set_named_property(env, error, "errno", number);
    napi_reject_deferred(env, call->deferred, error);
  } else {
    napi_value result;
    napi_create_int32(env, call->result, &result);
    napi_resolve_deferred(env, call->deferred, result);
  }
  napi_delete_async_work(env, call->work);
  free(call);
}

// callAsync(op, dirfd, name, flags, mode, dirfd2, name2) -> Promise<number>. The names are copied
// before the call is queued, so the caller may reuse its buffers at once.
static napi_value js_call_async(napi_env env, napi_callback_info info) {
  ARGS(7);
  INT_ARG(op, 0);
  INT_ARG(dirfd, 1);
  INT_ARG(flags, 3);
  INT_ARG(mode, 4);
  INT_ARG(dirfd2, 5);
  if (op < OP_OPEN_CREATE || op > OP_SYMLINK) return throw_type(env, "unknown asynchronous operation");
  async_call *call = calloc(1, sizeof *call);
  if (call == NULL) return throw_errno(env, ENOMEM, "calloc");
  if (get_name(env, argv[2], call->name, sizeof call->name) != 0 || get_name(env, argv[6], call->name2, sizeof call->name2) != 0) {
    free(call);
    return throw_type(env, "invalid name argument");
  }
  call->op = (enum async_op)op;
  call->dirfd = (int)dirfd;
  call->dirfd2 = (int)dirfd2;
  call->flags = (int)flags;
  call->mode = (int)mode;

  napi_value promise, resource_name;
  napi_create_promise(env, &call->deferred, &promise);
  napi_create_string_utf8(env, "aegisfs", NAPI_AUTO_LENGTH, &resource_name);
  napi_create_async_work(env, NULL, resource_name, async_execute, async_complete, call, &call->work);
  napi_queue_async_work(env, call->work);
  return promise;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor functions[] = {
    {"fstatat", NULL, js_fstatat, NULL, NULL, NULL, napi_default, NULL},
    {"fstat", NULL, js_fstat, NULL, NULL, NULL, napi_default, NULL},
    {"openat", NULL, js_openat, NULL, NULL, NULL, napi_default, NULL},
    {"mkdirat", NULL, js_mkdirat, NULL, NULL, NULL, napi_default, NULL},
    {"unlinkat", NULL, js_unlinkat, NULL, NULL, NULL, napi_default, NULL},
    {"renameat2", NULL, js_renameat2, NULL, NULL, NULL, napi_default, NULL},
    {"linkat", NULL, js_linkat, NULL, NULL, NULL, napi_default, NULL},
    {"symlinkat", NULL, js_symlinkat, NULL, NULL, NULL, napi_default, NULL},
    {"readlinkat", NULL, js_readlinkat, NULL, NULL, NULL, napi_default, NULL},
    {"utimensat", NULL, js_utimensat, NULL, NULL, NULL, napi_default, NULL},
    {"fchmodat", NULL, js_fchmodat, NULL, NULL, NULL, napi_default, NULL},
    {"fstatvfs", NULL, js_fstatvfs, NULL, NULL, NULL, napi_default, NULL},
    {"fdLocation", NULL, js_fd_location, NULL, NULL, NULL, napi_default, NULL},
    {"readdir", NULL, js_readdir, NULL, NULL, NULL, napi_default, NULL},
    {"callAsync", NULL, js_call_async, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof functions / sizeof functions[0], functions);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
