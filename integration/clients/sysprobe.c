/* sysprobe NAME... — makes each named system call once and prints "NAME: ok" or
 * "NAME: <strerror> (errno N)". Built static into the client test image (build-image) to
 * show that a seccomp profile blocks a call busybox has no applet for:
 *   personality  personality(PER_LINUX | ADDR_NO_RANDOMIZE): the Docker, containerd and
 *                podman default profiles allow only a few personality values
 *   userns       unshare(CLONE_NEWUSER): Docker's and containerd's profiles block it
 *                without CAP_SYS_ADMIN (podman's allows it)
 *   add_key      add_key("user", ...): blocked by all three profiles
 * Exit status: the number of calls that failed. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int failed = 0;
	for (int i = 1; i < argc; i++) {
		long r;
		errno = 0;
		if (strcmp(argv[i], "personality") == 0)
			r = personality(PER_LINUX | ADDR_NO_RANDOMIZE);
		else if (strcmp(argv[i], "userns") == 0)
			r = unshare(CLONE_NEWUSER);
		else if (strcmp(argv[i], "add_key") == 0)
			r = syscall(SYS_add_key, "user", "sysprobe", "x", 1, -3 /* KEY_SPEC_SESSION_KEYRING */);
		else {
			fprintf(stderr, "sysprobe: unknown call %s\n", argv[i]);
			return 127;
		}
		if (r == -1) {
			printf("%s: %s (errno %d)\n", argv[i], strerror(errno), errno);
			failed++;
		} else {
			printf("%s: ok\n", argv[i]);
		}
	}
	return failed;
}
