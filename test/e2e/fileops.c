// fileops: a single-process walk through the file operations a shell script
// would make (create, write, append, rename, link, symlink, lock, list,
// chmod, truncate, remove), printing what each step observes. Run natively
// and in the sandbox on identical trees, the two outputs must match.
//
// Usage: fileops DIR. DIR holds the tree fileops_test.py builds:
//   keep.txt "keep\n", old.txt "old contents\n", gone.txt "gone\n",
//   dir/a.txt "A", dir/sub/b.txt "B", emptydir/, link -> keep.txt

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static const char* errname(int e) {
  switch (e) {
    case 0: return "OK";
    case ENOENT: return "ENOENT";
    case EEXIST: return "EEXIST";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case ENOTEMPTY: return "ENOTEMPTY";
    case EINVAL: return "EINVAL";
    case EXDEV: return "EXDEV";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EBADF: return "EBADF";
    case EWOULDBLOCK: return "EWOULDBLOCK";
    case ELOOP: return "ELOOP";
    default: return "E?";
  }
}

// Each step prints "name: result".
static void report(const char* what, long ret) {
  printf("%s: %s\n", what, ret < 0 ? errname(errno) : "OK");
}

static int cmp(const void* a, const void* b) {
  return strcmp(*(char* const*)a, *(char* const*)b);
}

// list prints a directory's entries (without . and ..), sorted, with types.
static void list(const char* path) {
  DIR* d = opendir(path);
  if (d == NULL) {
    printf("list %s: %s\n", path, errname(errno));
    return;
  }
  char* names[256];
  int n = 0;
  struct dirent* e;
  while ((e = readdir(d)) != NULL && n < 256) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    char type = e->d_type == DT_DIR   ? 'd'
                : e->d_type == DT_REG ? 'f'
                : e->d_type == DT_LNK ? 'l'
                                      : '?';
    names[n] = malloc(strlen(e->d_name) + 3);
    sprintf(names[n], "%s%s", e->d_name, type == 'd' ? "/" : type == 'l' ? "@" : type == 'f' ? "" : "?");
    n++;
  }
  closedir(d);
  qsort(names, n, sizeof(names[0]), cmp);
  printf("list %s:", path);
  for (int i = 0; i < n; i++) {
    printf(" %s", names[i]);
    free(names[i]);
  }
  printf("\n");
}

static void show(const char* path) {
  char buf[256];
  int fd = open(path, O_RDONLY);
  if (fd < 0) {
    printf("read %s: %s\n", path, errname(errno));
    return;
  }
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n < 0) {
    printf("read %s: %s\n", path, errname(errno));
    return;
  }
  buf[n] = 0;
  printf("read %s: \"%s\"\n", path, buf);
}

static void st(const char* path) {
  struct stat s;
  if (lstat(path, &s) < 0) {
    printf("stat %s: %s\n", path, errname(errno));
    return;
  }
  printf("stat %s: type=%o perm=%04o", path, (unsigned)(s.st_mode & S_IFMT) >> 12,
         (unsigned)(s.st_mode & 07777));
  // A directory's size and link count depend on the filesystem.
  if (!S_ISDIR(s.st_mode)) {
    printf(" nlink=%lu size=%ld", (unsigned long)s.st_nlink, (long)s.st_size);
  }
  printf("\n");
}

static void write_file(const char* path, int flags, const char* data) {
  int fd = open(path, flags, 0644);
  if (fd < 0) {
    printf("open %s: %s\n", path, errname(errno));
    return;
  }
  ssize_t n = write(fd, data, strlen(data));
  printf("write %s: %zd\n", path, n);
  close(fd);
}

int main(int argc, char** argv) {
  if (argc != 2 || chdir(argv[1]) != 0) {
    fprintf(stderr, "usage: fileops DIR\n");
    return 2;
  }
  umask(022);
  list(".");
  st("keep.txt");
  st("dir");
  st("link");

  // Create, append, truncate.
  write_file("new.txt", O_WRONLY | O_CREAT | O_EXCL, "hello");
  st("new.txt");
  write_file("old.txt", O_WRONLY | O_APPEND, "more\n");
  show("old.txt");
  report("truncate old.txt 3", truncate("old.txt", 3));
  show("old.txt");
  write_file("keep.txt", O_WRONLY | O_CREAT | O_EXCL, "x");
  report("open dir O_WRONLY", open("dir", O_WRONLY));

  // Rename, link, symlink.
  report("rename new.txt renamed.txt", rename("new.txt", "renamed.txt"));
  st("new.txt");
  report("link renamed.txt hard.txt", link("renamed.txt", "hard.txt"));
  st("hard.txt");
  report("symlink sym", symlink("renamed.txt", "sym"));
  char target[64] = {0};
  printf("readlink sym: %zd %s\n", readlink("sym", target, sizeof(target) - 1), target);
  show("sym");
  show("link");

  // Locks.
  int fd = open("hard.txt", O_RDWR);
  int fd2 = open("hard.txt", O_RDWR);
  report("flock ex", flock(fd, LOCK_EX | LOCK_NB));
  report("flock ex again", flock(fd2, LOCK_EX | LOCK_NB));
  report("flock unlock", flock(fd, LOCK_UN));
  report("flock ex after unlock", flock(fd2, LOCK_EX | LOCK_NB));
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
  report("fcntl setlk", fcntl(fd, F_SETLK, &fl));
  close(fd2);
  close(fd);

  // Remove a file the tree came with, then make it again.
  report("unlink gone.txt", unlink("gone.txt"));
  st("gone.txt");
  list(".");
  write_file("gone.txt", O_WRONLY | O_CREAT | O_EXCL, "reborn");
  show("gone.txt");

  // Directories.
  report("mkdir newdir", mkdir("newdir", 0755));
  report("mkdir newdir again", mkdir("newdir", 0755));
  write_file("newdir/f", O_WRONLY | O_CREAT, "f");
  list("newdir");
  report("rename dir dir2", rename("dir", "dir2"));
  st("dir");
  list("dir2");
  list("dir2/sub");
  show("dir2/sub/b.txt");
  report("rename newdir into itself", rename("newdir", "newdir/x"));
  report("rmdir dir2", rmdir("dir2"));
  report("unlink dir2", unlink("dir2"));
  report("rmdir emptydir", rmdir("emptydir"));
  report("mkdir emptydir", mkdir("emptydir", 0700));
  list("emptydir");
  st("emptydir");

  // Rename over an existing file.
  report("rename renamed.txt keep.txt", rename("renamed.txt", "keep.txt"));
  show("keep.txt");
  st("hard.txt");
  report("chmod keep.txt", chmod("keep.txt", 0600));
  st("keep.txt");

  // Remove a tree.
  report("unlink dir2/a.txt", unlink("dir2/a.txt"));
  report("unlink dir2/sub/b.txt", unlink("dir2/sub/b.txt"));
  report("rmdir dir2/sub", rmdir("dir2/sub"));
  report("rmdir dir2", rmdir("dir2"));
  report("unlink newdir/f", unlink("newdir/f"));
  report("rmdir newdir", rmdir("newdir"));
  list(".");
  return 0;
}
