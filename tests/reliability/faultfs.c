/* An LD_PRELOAD shim for petrel's fault tests: while the file named by
 * $PETREL_FAULT_TRIGGER exists, every write or sync to a file under
 * $PETREL_FAULT_DIR fails with EIO (a dying disk, seen from the process).
 * Everything else, and everything when the trigger is absent, goes to libc.
 * Built at test time: cc -shared -fPIC -O2 -o faultfs.so faultfs.c -ldl */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static int faulty(int fd) {
  const char* trigger = getenv("PETREL_FAULT_TRIGGER");
  const char* dir = getenv("PETREL_FAULT_DIR");
  if (trigger == NULL || dir == NULL || access(trigger, F_OK) != 0) return 0;
  char link[64];
  char path[PATH_MAX];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof path - 1);
  if (n <= 0) return 0;
  path[n] = '\0';
  return strncmp(path, dir, strlen(dir)) == 0;
}

#define REAL(name) ((__typeof__(&name))dlsym(RTLD_NEXT, #name))

ssize_t write(int fd, const void* buf, size_t count) {
  if (faulty(fd)) return errno = EIO, -1;
  return REAL(write)(fd, buf, count);
}

ssize_t pwrite(int fd, const void* buf, size_t count, off_t offset) {
  if (faulty(fd)) return errno = EIO, -1;
  return REAL(pwrite)(fd, buf, count, offset);
}

ssize_t pwrite64(int fd, const void* buf, size_t count, off64_t offset) {
  if (faulty(fd)) return errno = EIO, -1;
  return REAL(pwrite64)(fd, buf, count, offset);
}

ssize_t writev(int fd, const struct iovec* iov, int iovcnt) {
  if (faulty(fd)) return errno = EIO, -1;
  return REAL(writev)(fd, iov, iovcnt);
}

int fsync(int fd) {
  if (faulty(fd)) return errno = EIO, -1;
  return REAL(fsync)(fd);
}

int fdatasync(int fd) {
  if (faulty(fd)) return errno = EIO, -1;
  return REAL(fdatasync)(fd);
}
