/* SPDX-License-Identifier: MIT */
/*
 * hvkit ctl: one request to a running machine's control socket
 * (docs/control.md), its answer printed for people or, with --json, as the
 * raw result for scripts.
 *
 * Exit status: 0 done; 1 the machine answered an error; 2 bad usage;
 * 3 no machine at that socket (or it went away); 4 timeout (the guest
 * did not answer in time, or the machine did not answer at all).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "hvkit_cmd.h"

enum { EXIT_VM_ERROR = 1, EXIT_USAGE = 2, EXIT_NO_VM = 3, EXIT_TIMEOUT = 4 };

/* How long past the request's own timeout to wait for the answer. */
#define ANSWER_SLACK_S 10

struct ctl_options {
	bool json;
	long timeout; /* -1: the command's default */
	const char *reason;
	bool force;
	long pool;    /* -1: default */
	bool overwrite;
	bool resume;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: hvkit ctl [--json] SOCKET COMMAND [ARGS]\n"
		"  status                          the machine, its VMBus channels, devices\n"
		"  device add|remove KIND INSTANCE hot add / rescind a device (KIND: echo)\n"
		"  net-add SPEC                    hot add a NIC; SPEC as hvkit run --net\n"
		"  net-remove NIC                  rescind NIC number NIC\n"
		"  net-link NIC up|down            plug NIC's cable in or out\n"
		"  disk-add path=F[,readonly=on][,lun=N]  hot add a disk image (first free LUN)\n"
		"  disk-remove LUN                 hot remove the disk at LUN\n"
		"  storage-remove                  rescind the storage controller and its disks\n"
		"  pause | resume                  stop every VP where it is / let them run on\n"
		"  snapshot FILE [--resume]        save the VM to FILE (hvkit run --restore FILE\n"
		"                                  continues it); it stays paused unless --resume\n"
		"  quit                            stop the machine\n"
		"  shutdown|reboot|hibernate [--timeout S] [--reason TEXT] [--force]\n"
		"  kvp set KEY VALUE | get KEY | delete KEY | list   [--pool N]\n"
		"  vss freeze|thaw [--timeout S]\n"
		"  timesync [--timeout S]          set the guest's clock to the host's now\n"
		"  copy HOSTFILE GUESTPATH [--overwrite] [--timeout S]\n"
		"--json prints the raw result (or error) object. Exit status: 0 done, 1 the machine answered\n"
		"an error, 2 bad usage, 3 no machine at SOCKET, 4 timeout.\n");
}

/* ---- Building the request ---- */

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("hvkit ctl: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (hvkit ctl --help)\n", stderr);
	return -EXIT_USAGE;
}

static void set_common(json_t *args, const struct ctl_options *o, bool timeout)
{
	if (timeout && o->timeout >= 0)
		json_object_set_new(args, "timeout", json_integer(o->timeout));
}

/* path=F[,readonly=on|off][,lun=N], as hvkit run --disk spells it. */
static int disk_add_args(const char *spec, json_t *args)
{
	char buf[4200];
	if (strlen(spec) >= sizeof(buf))
		return usage_error("disk-add: spec too long");
	strcpy(buf, spec);
	bool have_path = false;
	for (char *save, *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		char *v = strchr(kv, '=');
		if (!v)
			return usage_error("disk-add: '%s' is not KEY=VALUE", kv);
		*v++ = '\0';
		if (!strcmp(kv, "path") && *v) {
			json_object_set_new(args, "path", json_string(v));
			have_path = true;
		} else if (!strcmp(kv, "readonly") && (!strcmp(v, "on") || !strcmp(v, "off"))) {
			json_object_set_new(args, "readonly", json_boolean(!strcmp(v, "on")));
		} else if (!strcmp(kv, "lun")) {
			uint64_t lun;
			if (!cli_number(v, &lun) || lun > 63)
				return usage_error("disk-add: bad LUN '%s' (0..63)", v);
			json_object_set_new(args, "lun", json_integer((json_int_t)lun));
		} else {
			return usage_error("disk-add: bad option '%s=%s'", kv, v);
		}
	}
	return have_path ? 0 : usage_error("disk-add: path= is required");
}

/* Turns the words after SOCKET into (command, args); a negative exit
 * status on bad usage. */
static int build(int argc, char **argv, const struct ctl_options *o, const char **command,
		 json_t *args)
{
	const char *w = argv[0];
	int n = argc - 1; /* words after the command */
	if (!strcmp(w, "status") || !strcmp(w, "quit") || !strcmp(w, "pause") ||
	    !strcmp(w, "resume")) {
		*command = w;
		return n ? usage_error("%s takes no arguments", w) : 0;
	}
	if (!strcmp(w, "device")) {
		if (n != 3 || (strcmp(argv[1], "add") && strcmp(argv[1], "remove")))
			return usage_error("%s: device add|remove KIND INSTANCE", w);
		uint64_t inst;
		if (!cli_number(argv[3], &inst) || inst > UINT32_MAX)
			return usage_error("bad instance number '%s'", argv[3]);
		*command = !strcmp(argv[1], "add") ? "device-add" : "device-remove";
		json_object_set_new(args, "kind", json_string(argv[2]));
		json_object_set_new(args, "instance", json_integer((json_int_t)inst));
		return 0;
	}
	if (!strcmp(w, "net-add")) {
		if (n != 1)
			return usage_error("%s SPEC (as hvkit run --net)", w);
		*command = w;
		json_object_set_new(args, "spec", json_string(argv[1]));
		return 0;
	}
	if (!strcmp(w, "net-remove") || !strcmp(w, "net-link")) {
		bool link = !strcmp(w, "net-link");
		if (n != (link ? 2 : 1) ||
		    (link && strcmp(argv[2], "up") && strcmp(argv[2], "down")))
			return usage_error("%s", link ? "net-link NIC up|down" : "net-remove NIC");
		uint64_t nic;
		if (!cli_number(argv[1], &nic) || nic > UINT32_MAX)
			return usage_error("bad NIC number '%s'", argv[1]);
		*command = w;
		json_object_set_new(args, "nic", json_integer((json_int_t)nic));
		if (link)
			json_object_set_new(args, "link", json_string(argv[2]));
		return 0;
	}
	if (!strcmp(w, "disk-add")) {
		if (n != 1)
			return usage_error("%s path=F[,readonly=on][,lun=N]", w);
		*command = w;
		return disk_add_args(argv[1], args);
	}
	if (!strcmp(w, "storage-remove")) {
		if (n)
			return usage_error("%s takes no arguments", w);
		*command = w;
		return 0;
	}
	if (!strcmp(w, "disk-remove")) {
		uint64_t lun;
		if (n != 1 || !cli_number(argv[1], &lun) || lun > 63)
			return usage_error("%s LUN (0..63)", w);
		*command = w;
		json_object_set_new(args, "lun", json_integer((json_int_t)lun));
		return 0;
	}
	if (!strcmp(w, "shutdown") || !strcmp(w, "reboot") || !strcmp(w, "hibernate")) {
		if (n)
			return usage_error("%s takes options only", w);
		*command = w;
		set_common(args, o, true);
		if (o->reason)
			json_object_set_new(args, "reason", json_string(o->reason));
		if (o->force)
			json_object_set_new(args, "force", json_true());
		return 0;
	}
	if (!strcmp(w, "kvp")) {
		static const struct {
			const char *verb, *command;
			int words;
		} kvp[] = {{"set", "kvp-set", 3}, {"get", "kvp-get", 2},
			   {"delete", "kvp-delete", 2}, {"list", "kvp-list", 1}};
		for (size_t i = 0; n >= 1 && i < sizeof(kvp) / sizeof(kvp[0]); i++) {
			if (strcmp(argv[1], kvp[i].verb))
				continue;
			if (n != kvp[i].words)
				return usage_error("%s: kvp set KEY VALUE | get KEY | delete KEY | "
						   "list",
						   w);
			*command = kvp[i].command;
			set_common(args, o, true);
			if (o->pool >= 0)
				json_object_set_new(args, "pool", json_integer(o->pool));
			if (n >= 2)
				json_object_set_new(args, "key", json_string(argv[2]));
			if (n >= 3)
				json_object_set_new(args, "value", json_string(argv[3]));
			return 0;
		}
		return usage_error("%s: kvp set KEY VALUE | get KEY | delete KEY | list", w);
	}
	if (!strcmp(w, "vss")) {
		if (n != 1 || (strcmp(argv[1], "freeze") && strcmp(argv[1], "thaw")))
			return usage_error("%s: vss freeze|thaw", w);
		*command = !strcmp(argv[1], "freeze") ? "vss-freeze" : "vss-thaw";
		set_common(args, o, true);
		return 0;
	}
	if (!strcmp(w, "timesync")) {
		if (n != 0)
			return usage_error("%s: timesync takes no arguments", w);
		*command = "timesync";
		set_common(args, o, true);
		return 0;
	}
	if (!strcmp(w, "snapshot")) {
		if (n != 1)
			return usage_error("%s: snapshot FILE [--resume]", w);
		/* The machine writes the file: a path that does not depend on
		 * its working directory (the file need not exist yet). */
		char dir[PATH_MAX], copy[PATH_MAX], abs[PATH_MAX + 256];
		snprintf(copy, sizeof(copy), "%s", argv[1]);
		const char *base = strrchr(argv[1], '/') ? strrchr(argv[1], '/') + 1 : argv[1];
		if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
			return usage_error("snapshot: '%s' names no file", argv[1]);
		if (!realpath(dirname(copy), dir)) {
			fprintf(stderr, "hvkit ctl: %s: %s\n", argv[1], strerror(errno));
			return -EXIT_VM_ERROR;
		}
		snprintf(abs, sizeof(abs), "%s/%s", strcmp(dir, "/") ? dir : "", base);
		*command = "snapshot";
		json_object_set_new(args, "path", json_string(abs));
		if (o->resume)
			json_object_set_new(args, "resume", json_true());
		return 0;
	}
	if (!strcmp(w, "copy")) {
		if (n != 2)
			return usage_error("%s: copy HOSTFILE GUESTPATH", w);
		/* The machine reads the file: give it a path that does not
		 * depend on its working directory. */
		char host[PATH_MAX];
		if (!realpath(argv[1], host)) {
			fprintf(stderr, "hvkit ctl: %s: %s\n", argv[1], strerror(errno));
			return -EXIT_VM_ERROR;
		}
		*command = "copy";
		set_common(args, o, true);
		json_object_set_new(args, "host_file", json_string(host));
		json_object_set_new(args, "guest_path", json_string(argv[2]));
		if (o->overwrite)
			json_object_set_new(args, "overwrite", json_true());
		return 0;
	}
	return usage_error("unknown command '%s'", w);
}

/* ---- Talking to the machine ---- */

static int connect_to(const char *path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "hvkit ctl: socket path too long: %s\n", path);
		return -1;
	}
	strcpy(addr.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && !connect(fd, (struct sockaddr *)&addr, sizeof(addr)))
		return fd;
	int err = errno;
	if (fd >= 0)
		close(fd);
	if (err == ENOENT)
		fprintf(stderr, "hvkit ctl: no such socket: %s (is the machine running with "
				"--control?)\n", path);
	else if (err == ECONNREFUSED)
		fprintf(stderr, "hvkit ctl: no machine is listening on %s (it has stopped)\n",
			path);
	else
		fprintf(stderr, "hvkit ctl: cannot connect to %s: %s\n", path, strerror(err));
	return -1;
}

static int send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads lines until the answer with our id; NULL and *status on failure. */
#define ANSWER_MAX (1024 * 1024)
static json_t *read_answer(int fd, json_int_t id, int wait_s, char *buf, int *status)
{
	size_t len = 0;
	int64_t deadline = cli_now_ms() + (int64_t)wait_s * 1000;
	for (;;) {
		char *nl;
		while ((nl = memchr(buf, '\n', len))) {
			json_t *msg = json_loadb(buf, (size_t)(nl - buf), 0, NULL);
			size_t used = (size_t)(nl - buf) + 1;
			memmove(buf, buf + used, len - used);
			len -= used;
			json_t *jid = json_object_get(msg, "id");
			if (json_is_integer(jid) && json_integer_value(jid) == id)
				return msg;
			if (json_is_null(jid) && json_is_false(json_object_get(msg, "ok")))
				return msg; /* refused before it was read (busy...) */
			json_decref(msg);
		}
		int64_t left = deadline - cli_now_ms();
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int r = left > 0 ? poll(&p, 1, (int)left) : 0;
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			fprintf(stderr, "hvkit ctl: the machine did not answer within %d s\n",
				wait_s);
			*status = EXIT_TIMEOUT;
			return NULL;
		}
		if (len == ANSWER_MAX) {
			fprintf(stderr, "hvkit ctl: answer too long\n");
			*status = EXIT_VM_ERROR;
			return NULL;
		}
		ssize_t n = recv(fd, buf + len, ANSWER_MAX - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "hvkit ctl: the machine closed the connection\n");
			*status = EXIT_NO_VM;
			return NULL;
		}
		len += (size_t)n;
	}
}

static json_t *await_answer(int fd, json_int_t id, int wait_s, int *status)
{
	char *buf = malloc(ANSWER_MAX);
	if (!buf) {
		*status = EXIT_VM_ERROR;
		return NULL;
	}
	json_t *answer = read_answer(fd, id, wait_s, buf, status);
	free(buf);
	return answer;
}

/* ---- Printing ---- */

static void print_scalar(const char *key, json_t *v)
{
	if (json_is_string(v))
		printf("%s: %s\n", key, json_string_value(v));
	else if (json_is_integer(v))
		printf("%s: %lld\n", key, (long long)json_integer_value(v));
	else if (json_is_boolean(v))
		printf("%s: %s\n", key, json_is_true(v) ? "yes" : "no");
	else if (json_is_real(v))
		printf("%s: %g\n", key, json_real_value(v));
}

/* crash: VP 0, P0-P4 0xc0ffee 0x1 0x2 0x3 0x4 (if reported), then the
 * guest's message (a kernel log, possibly) one indented line at a time. */
static void print_crash(json_t *c)
{
	if (!c)
		return;
	printf("crash: VP %lld, P0-P4", (long long)json_integer_value(json_object_get(c, "vp")));
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(c, "params"), i, p)
		printf(" %#llx", (unsigned long long)json_integer_value(p));
	printf("\n");
	const char *text = json_string_value(json_object_get(c, "message"));
	while (text && *text) {
		size_t n = strcspn(text, "\n");
		printf("  %.*s\n", (int)n, text);
		text += n + (text[n] == '\n');
	}
}

static void print_status(json_t *r)
{
	json_t *m = json_object_get(r, "machine"), *vb = json_object_get(r, "vmbus");
	printf("machine: %s partition, %lld VPs, %lld MiB, up %.1f s%s\n",
	       json_string_value(json_object_get(m, "partition")),
	       (long long)json_integer_value(json_object_get(m, "vps")),
	       (long long)json_integer_value(json_object_get(m, "memory")) >> 20,
	       json_number_value(json_object_get(m, "uptime_seconds")),
	       json_is_true(json_object_get(m, "paused")) ? ", paused" : "");
	const char *vm_id = json_string_value(json_object_get(m, "vm_id"));
	if (vm_id)
		printf("vm id: %s\n", vm_id);
	print_crash(json_object_get(m, "crash"));
	json_t *chans = json_object_get(vb, "channels");
	const char *version = json_string_value(json_object_get(vb, "version"));
	printf("vmbus: %s%s%s, %zu channels, %lld bad guest messages\n",
	       json_string_value(json_object_get(vb, "state")), version && *version ? " " : "",
	       version ? version : "", json_array_size(chans),
	       (long long)json_integer_value(json_object_get(vb, "bad_messages")));
	if (json_array_size(chans))
		printf("  %-8s %-36s %3s %5s %3s %-9s %10s %10s %8s\n", "class", "instance", "sub",
		       "relid", "vp", "state", "guest sig", "host sig", "spurious");
	size_t i;
	json_t *c;
	json_array_foreach(chans, i, c)
	{
#define I(k) ((long long)json_integer_value(json_object_get(c, k)))
		printf("  %-8s %-36s %3lld %5lld %3lld %-9s %10lld %10lld %8lld\n",
		       json_string_value(json_object_get(c, "class")),
		       json_string_value(json_object_get(c, "instance")), I("sub_index"),
		       I("relid"), I("target_vp"), json_string_value(json_object_get(c, "state")),
		       I("guest_signals"), I("host_signals"), I("spurious_signals"));
#undef I
	}
	json_t *devs = json_object_get(r, "devices");
	printf("devices:%s\n", json_array_size(devs) ? "" : " none");
	json_array_foreach(devs, i, c)
		printf("  %s %lld (%lld packets)\n", json_string_value(json_object_get(c, "kind")),
		       (long long)json_integer_value(json_object_get(c, "instance")),
		       (long long)json_integer_value(json_object_get(c, "packets")));
	json_t *svc = json_object_get(r, "services");
	printf("services:%s\n", json_object_size(svc) ? "" : " none registered");
	const char *key;
	json_t *v;
	json_object_foreach(svc, key, v)
	{
		printf("  ");
		print_scalar(key, v);
	}
}

static void print_result(const char *command, json_t *args, json_t *r)
{
	if (!strcmp(command, "status")) {
		print_status(r);
	} else if (!strcmp(command, "device-add") || !strcmp(command, "device-remove")) {
		printf("%s %s %lld\n", command[7] == 'a' ? "added" : "removed",
		       json_string_value(json_object_get(args, "kind")),
		       (long long)json_integer_value(json_object_get(args, "instance")));
	} else if (!strncmp(command, "net-", 4)) {
		long long nic = (long long)json_integer_value(json_object_get(r, "nic"));
		if (!strcmp(command, "net-add"))
			printf("added NIC %lld\n", nic);
		else if (!strcmp(command, "net-remove"))
			printf("removed NIC %lld\n", nic);
		else
			printf("NIC %lld link %s\n", nic, json_string_value(json_object_get(r, "link")));
	} else if (!strcmp(command, "disk-add") || !strcmp(command, "disk-remove")) {
		bool add = command[5] == 'a';
		printf("%s disk at LUN %lld\n", add ? "added" : "removed",
		       (long long)json_integer_value(json_object_get(add ? r : args, "lun")));
	} else if (!strcmp(command, "storage-remove")) {
		printf("removed the storage controller\n");
	} else if (!strcmp(command, "quit")) {
		printf("the machine is stopping\n");
	} else if (!strcmp(command, "snapshot")) {
		printf("saved %s: %.1f MiB (%.1f MiB of RAM) in %.3f s; the machine is %s\n",
		       json_string_value(json_object_get(r, "path")),
		       (double)json_integer_value(json_object_get(r, "bytes")) / (1 << 20),
		       (double)json_integer_value(json_object_get(r, "ram_bytes")) / (1 << 20),
		       json_number_value(json_object_get(r, "seconds")),
		       json_is_true(json_object_get(r, "paused")) ? "paused" : "running");
	} else if (!strcmp(command, "pause") || !strcmp(command, "resume")) {
		printf("the machine is %s\n", command[0] == 'p' ? "paused" : "running");
	} else if (!strcmp(command, "kvp-get")) {
		printf("%s\n", json_string_value(json_object_get(r, "value")));
	} else if (!strcmp(command, "kvp-list")) {
		size_t i;
		json_t *p;
		json_array_foreach(json_object_get(r, "items"), i, p)
			printf("%s=%s\n", json_string_value(json_object_get(p, "key")),
			       json_string_value(json_object_get(p, "value")));
	} else {
		const char *key;
		json_t *v;
		json_object_foreach(r, key, v)
			print_scalar(key, v);
	}
}

/* ---- The command ---- */

static int parse_options(int argc, char **argv, struct ctl_options *o)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},
		{"timeout", required_argument, NULL, 't'},
		{"reason", required_argument, NULL, 'r'},
		{"force", no_argument, NULL, 'f'},
		{"pool", required_argument, NULL, 'p'},
		{"overwrite", no_argument, NULL, 'o'},
		{"resume", no_argument, NULL, 'R'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;
	uint64_t v;
	while ((c = getopt_long(argc, argv, "jt:r:fp:oh", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			o->json = true;
			break;
		case 't':
			if (!cli_number(optarg, &v) || v < 1 || v > 3600)
				return usage_error("--timeout takes 1 to 3600 seconds, not '%s'",
						   optarg);
			o->timeout = (long)v;
			break;
		case 'r':
			o->reason = optarg;
			break;
		case 'f':
			o->force = true;
			break;
		case 'R':
			o->resume = true;
			break;
		case 'p':
			if (!cli_number(optarg, &v) || v > 4)
				return usage_error("--pool takes 0 to 4, not '%s'", optarg);
			o->pool = (long)v;
			break;
		case 'o':
			o->overwrite = true;
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			usage(stderr);
			return -EXIT_USAGE;
		}
	}
	if (argc - optind < 2) {
		usage(stderr);
		return -EXIT_USAGE;
	}
	return 0;
}

static int report_error(json_t *err, bool json)
{
	if (json) {
		/* Scripts get the error object too, on stdout. */
		char *text = json_dumps(err, JSON_INDENT(2));
		printf("%s\n", text ? text : "{}");
		free(text);
	}
	const char *code = json_string_value(json_object_get(err, "code"));
	const char *msg = json_string_value(json_object_get(err, "message"));
	fprintf(stderr, "hvkit ctl: %s (%s)\n", msg ? msg : "failed", code ? code : "?");
	return code && !strcmp(code, "timeout") ? EXIT_TIMEOUT : EXIT_VM_ERROR;
}

int cmd_ctl(int argc, char **argv)
{
	struct ctl_options o = {.timeout = -1, .pool = -1};
	int err = parse_options(argc, argv, &o);
	if (err)
		return err > 0 ? 0 : -err;
	const char *path = argv[optind];
	const char *command = NULL;
	json_t *args = json_object();
	err = build(argc - optind - 1, argv + optind + 1, &o, &command, args);
	if (err) {
		json_decref(args);
		return -err;
	}
	json_t *req = json_pack("{s:i,s:s,s:O}", "id", 1, "command", command, "args", args);
	char *line = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	int fd = connect_to(path);
	if (fd < 0) {
		free(line);
		json_decref(args);
		return EXIT_NO_VM;
	}
	int status = 0;
	json_t *answer = NULL;
	if (send_all(fd, line, strlen(line)) || send_all(fd, "\n", 1)) {
		fprintf(stderr, "hvkit ctl: the machine closed the connection\n");
		status = EXIT_NO_VM;
	} else {
		/* The machine enforces the request's timeout; this one only
		 * covers a machine that stopped answering. */
		json_t *t = json_object_get(args, "timeout");
		bool instant = !strcmp(command, "status") || !strcmp(command, "quit") ||
			       !strcmp(command, "pause") || !strcmp(command, "resume") ||
			       !strncmp(command, "device-", 7) || !strncmp(command, "net-", 4) ||
			       !strncmp(command, "disk-", 5);
		int wait = (instant ? 20 : t ? (int)json_integer_value(t) : 300) + ANSWER_SLACK_S;
		answer = await_answer(fd, 1, wait, &status);
	}
	close(fd);
	free(line);
	if (answer && json_is_true(json_object_get(answer, "ok"))) {
		json_t *r = json_object_get(answer, "result");
		if (o.json) {
			char *s = json_dumps(r, JSON_INDENT(2));
			printf("%s\n", s ? s : "{}");
			free(s);
		} else {
			print_result(command, args, r);
		}
	} else if (answer) {
		status = report_error(json_object_get(answer, "error"), o.json);
	}
	json_decref(answer);
	json_decref(args);
	return status;
}
