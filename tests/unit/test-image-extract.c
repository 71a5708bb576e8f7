/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The real piemu-image-extract, run through image_extract_run() as piemud does, on small disk
 * images built on the fly by make-extract-images.sh (sfdisk, mkfs.vfat, mcopy, xz).
 * Usage: test-image-extract HELPER SCRIPT DTB */

#include <dirent.h>
#include <fcntl.h>
#include <libfdt.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "extract-run.h"
#include "macro.h"
#include "tests.h"

static const char *helper, *script, *dtb_src;
static char tmp[] = "/tmp/test-image-extract.XXXXXX";
static char fx[sizeof(tmp) + 8];
static int n_out;

static const char good_cmdline[] = "root=PARTUUID=3a90e54f-02 rootfstype=ext4 fsck.repair=yes rootwait "
                                   "console=ttyAMA0,115200";

typedef struct Run {
        int r;
        ImageExtractError err;
        char *msg;
        ImageExtractResult res;
        char outdir[sizeof(tmp) + 16];
} Run;

static void run_done(Run *run) {
        free(run->msg);
        image_extract_result_done(&run->res);
}

static bool tool_exists(const char *name) {
        static const char *const dirs[] = {"/usr/bin", "/bin", "/usr/sbin", "/sbin"};
        char p[256];

        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                snprintf(p, sizeof(p), "%s/%s", dirs[i], name);
                if (access(p, X_OK) == 0)
                        return true;
        }
        return false;
}

/* Runs the helper on fd image_fd into a fresh output directory. */
static void run_fd(int image_fd, const char *model, bool dtb_only, uint64_t max_size, Run *run) {
        int dir;

        *run = (Run){};
        snprintf(run->outdir, sizeof(run->outdir), "%s/out%d", tmp, n_out++);
        CHECK(mkdir(run->outdir, 0700) == 0);
        /* Run as root, the helper becomes nobody and must still be able to write here. */
        if (geteuid() == 0)
                CHECK(chmod(run->outdir, 0777) == 0);
        dir = open(run->outdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        CHECK(dir >= 0);
        run->r = image_extract_run(helper, image_fd, dir, model, dtb_only, max_size, 120 * UINT64_C(1000000),
                                   &run->res, &run->err, &run->msg);
        close(dir);
}

static void run_image(const char *image, const char *model, bool dtb_only, uint64_t max_size, Run *run) {
        char path[256];
        int fd;

        snprintf(path, sizeof(path), "%s/%s", image[0] == '/' ? "" : fx, image);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        CHECK(fd >= 0);
        run_fd(fd, model, dtb_only, max_size, run);
        close(fd);
}

static void expect_failure(const char *image, const char *model, uint64_t max_size, int want_r,
                           ImageExtractError want, const char *want_msg) {
        Run run;

        run_image(image, model, false, max_size, &run);
        printf("  %-20s %-8s -> %d %s\n", image, model, (int)run.err, strempty(run.msg));
        if (run.r != want_r || run.err != want) {
                fprintf(stderr, "%s: got r=%d kind=%d (%s), want r=%d kind=%d\n", image, run.r, (int)run.err,
                        strempty(run.msg), want_r, (int)want);
                exit(1);
        }
        CHECK_CONTAINS(run.msg, want_msg);
        run_done(&run);
}

static void check_same_file(const char *a, const char *b) {
        _cleanup_fclose_ FILE *fa = fopen(a, "re"), *fb = fopen(b, "re");
        static char ba[65536], bb[65536];
        size_t na, nb;

        CHECK(fa && fb);
        do {
                na = fread(ba, 1, sizeof(ba), fa);
                nb = fread(bb, 1, sizeof(bb), fb);
                if (na != nb || memcmp(ba, bb, na) != 0) {
                        fprintf(stderr, "%s and %s differ\n", a, b);
                        exit(1);
                }
        } while (na > 0);
}

static void check_dtb(const char *path, uint32_t rev) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        static char buf[1 << 20];
        const fdt32_t *r;
        const char *s0;
        size_t n;
        int off, len, child;

        CHECK(f);
        n = fread(buf, 1, sizeof(buf), f);
        CHECK(n > 0 && fdt_check_full(buf, n) == 0);
        off = fdt_path_offset(buf, "/system");
        CHECK(off >= 0);
        r = fdt_getprop(buf, off, "linux,revision", &len);
        CHECK(r && len == 4 && fdt32_to_cpu(*r) == rev);
        off = fdt_path_offset(buf, "/aliases");
        s0 = fdt_getprop(buf, off, "serial0", NULL);
        CHECK_STREQ(s0, "/soc/serial@7e201000");
        CHECK_STREQ(fdt_getprop(buf, off, "serial1", NULL), "/soc/serial@7e215040");
        off = fdt_path_offset(buf, s0);
        CHECK(off >= 0);
        fdt_for_each_subnode(child, buf, off)
                CHECK(strncmp(fdt_get_name(buf, child, NULL), "bluetooth", 9) != 0);
}

/* The output directory holds exactly these files, each 0644. */
static void check_outdir(const Run *run, const char *const *want) {
        size_t n_want = 0, n = 0;
        DIR *d = opendir(run->outdir);

        CHECK(d);
        while (want[n_want])
                n_want++;
        for (struct dirent *de; (de = readdir(d));) {
                struct stat st;
                bool found = false;

                if (de->d_name[0] == '.')
                        continue;
                for (size_t i = 0; i < n_want; i++)
                        found = found || streq(de->d_name, want[i]);
                if (!found) {
                        fprintf(stderr, "unexpected %s in %s\n", de->d_name, run->outdir);
                        exit(1);
                }
                CHECK(fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0);
                CHECK(S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0644);
                n++;
        }
        closedir(d);
        CHECK(n == n_want);
}

static void out_path(const Run *run, const char *name, char *buf, size_t size) {
        snprintf(buf, size, "%s/%s", run->outdir, name);
}

static bool has_note(const ImageExtractResult *r, const char *needle) {
        for (size_t i = 0; i < r->n_notes; i++)
                if (strstr(r->notes[i], needle))
                        return true;
        return false;
}

static void check_good(const Run *run, const char *what) {
        static const char *const files[] = {"sd.img", "kernel", "dtb", "initrd", NULL};
        char a[256], b[256];
        struct stat st;

        if (run->r < 0) {
                fprintf(stderr, "%s: %s\n", what, strempty(run->msg));
                exit(1);
        }
        CHECK_STREQ(run->res.cmdline, good_cmdline);
        CHECK_STREQ(run->res.kernel, "kernel8.img");
        CHECK_STREQ(run->res.dtb, "bcm2710-rpi-3-b.dtb");
        CHECK_STREQ(run->res.initrd, "initramfs8");
        CHECK(run->res.has_initrd && run->res.arm_64bit);
        CHECK(run->res.sd_size == 64 << 20);
        CHECK(has_note(&run->res, "not following \"include extra.txt\""));
        check_outdir(run, files);

        out_path(run, "kernel", a, sizeof(a));
        snprintf(b, sizeof(b), "%s/files/kernel8.img", fx);
        check_same_file(a, b);
        out_path(run, "initrd", a, sizeof(a));
        snprintf(b, sizeof(b), "%s/files/initramfs8", fx);
        check_same_file(a, b);
        out_path(run, "sd.img", a, sizeof(a));
        snprintf(b, sizeof(b), "%s/good.img", fx);
        check_same_file(a, b);
        /* sparse: the 64 MiB image has ~1.2 MiB of data */
        CHECK(stat(a, &st) == 0 && st.st_size == 64 << 20);
        CHECK((uint64_t)st.st_blocks * 512 < 8 << 20);
        out_path(run, "dtb", a, sizeof(a));
        check_dtb(a, 0xa02082);
        printf("  %-20s ok: %s\n", what, run->res.cmdline);
}

static void test_good(void) {
        Run run;
        char a[256], b[256];
        int p[2];
        pid_t pid;

        run_image("good.img", "raspi3b", false, 0, &run);
        check_good(&run, "good.img");
        run_done(&run);

        run_image("good.img.xz", "raspi3b", false, 0, &run);
        check_good(&run, "good.img.xz");
        run_done(&run);

        /* exactly at the limit is fine */
        run_image("good.img", "raspi3b", false, 64 << 20, &run);
        check_good(&run, "good.img (limit)");
        run_done(&run);

        /* from a pipe: no size to look at, no holes to seek to */
        CHECK(pipe2(p, O_CLOEXEC) == 0);
        pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                char path[256];
                int fd;

                snprintf(path, sizeof(path), "%s/good.img.xz", fx);
                fd = open(path, O_RDONLY);
                if (fd < 0 || dup2(fd, 0) < 0 || dup2(p[1], 1) < 0)
                        _exit(1);
                execl("/bin/cat", "cat", NULL);
                _exit(127);
        }
        close(p[1]);
        run_fd(p[0], "raspi3b", false, 0, &run);
        close(p[0]);
        CHECK(waitpid(pid, NULL, 0) == pid);
        check_good(&run, "good.img.xz (pipe)");
        run_done(&run);

        /* FAT partition 1 that holds no FAT: partition 2 is the boot partition */
        run_image("fake-fat-first.img", "raspi3b", false, 0, &run);
        CHECK(run.r == 0);
        CHECK(has_note(&run.res, "the boot partition is partition 2"));
        CHECK(has_note(&run.res, "partition 1 (type 0x0c) holds no FAT file system"));
        CHECK_STREQ(run.res.kernel, "kernel8.img");
        run_done(&run);

        /* upstream style: kernel7.img (no arm_64bit), broadcom/ dtb, cmdline= file, FAT16 LBA */
        {
                static const char *const files[] = {"sd.img", "kernel", "dtb", NULL};

                run_image("upstream.img", "raspi3b", false, 0, &run);
                if (run.r < 0)
                        fprintf(stderr, "upstream.img: %s\n", strempty(run.msg));
                CHECK(run.r == 0);
                CHECK_STREQ(run.res.kernel, "kernel7.img");
                CHECK_STREQ(run.res.dtb, "broadcom/bcm2837-rpi-3-b.dtb");
                CHECK(!run.res.initrd && !run.res.has_initrd && !run.res.arm_64bit);
                CHECK_STREQ(run.res.cmdline,
                            "root=/dev/mmcblk0p2 rootwait console=ttyAMA0,115200 -- single console=foo");
                check_outdir(&run, files);
                out_path(&run, "kernel", a, sizeof(a));
                snprintf(b, sizeof(b), "%s/files/kernel7.img", fx);
                check_same_file(a, b);
                printf("  %-20s ok: %s\n", "upstream.img", run.res.cmdline);
                run_done(&run);
        }

        /* --dtb-only, the older three-file import */
        {
                static const char *const files[] = {"dtb", NULL};

                run_image(dtb_src, "raspi3b", true, 0, &run);
                CHECK(run.r == 0);
                check_outdir(&run, files);
                out_path(&run, "dtb", a, sizeof(a));
                check_dtb(a, 0xa02082);
                run_done(&run);
                run_image(dtb_src, "raspi3ap", true, 0, &run);
                CHECK(run.r == 0);
                out_path(&run, "dtb", a, sizeof(a));
                check_dtb(a, 0x9020e0);
                run_done(&run);
        }
}

static void test_failures(void) {
        expect_failure("truncated.img.xz", "raspi3b", 0, -EBADMSG, IMAGE_EXTRACT_XZ_TRUNCATED, "truncated");
        expect_failure("corrupt.img.xz", "raspi3b", 0, -EBADMSG, IMAGE_EXTRACT_XZ_CORRUPT, "corrupt");
        expect_failure("garbage.img.xz", "raspi3b", 0, -EBADMSG, IMAGE_EXTRACT_XZ_CORRUPT, "xz");
        expect_failure("random.img", "raspi3b", 0, -EBADMSG, IMAGE_EXTRACT_NOT_MBR, "MBR");
        expect_failure("gpt.img", "raspi3b", 0, -EBADMSG, IMAGE_EXTRACT_NOT_MBR, "GPT");
        expect_failure("files/config.txt", "raspi3b", 0, -EBADMSG, IMAGE_EXTRACT_NOT_MBR, "");
        expect_failure("linux-only.img", "raspi3b", 0, -EBADMSG, IMAGE_EXTRACT_NO_BOOT_PARTITION,
                       "no FAT boot partition");
        expect_failure("nokernel.img", "raspi3b", 0, -EBADMSG, IMAGE_EXTRACT_NO_KERNEL, "no kernel8.img");
        expect_failure("nodtb.img", "raspi3b", 0, -EBADMSG, IMAGE_EXTRACT_NO_DTB, "bcm2710-rpi-3-b.dtb");
        expect_failure("baddtb.img", "raspi3b", 0, -EBADMSG, IMAGE_EXTRACT_BAD_DTB, "bcm2710-rpi-3-b.dtb");
        expect_failure("badcmdline.img", "raspi3b", 0, -EBADMSG, IMAGE_EXTRACT_BAD_CMDLINE, "cmdline.txt");
        expect_failure("good.img", "raspi3b", 1 << 20, -EFBIG, IMAGE_EXTRACT_TOO_LARGE, "larger than");
        expect_failure("good.img.xz", "raspi3b", 1 << 20, -EFBIG, IMAGE_EXTRACT_TOO_LARGE, "larger than");
        /* the same image for other boards: [pi4] asks for kernel7l.img, there is no 3A+ dtb */
        expect_failure("good.img", "raspi4b", 0, -EBADMSG, IMAGE_EXTRACT_NO_KERNEL, "kernel7l.img");
        expect_failure("good.img", "raspi3ap", 0, -EBADMSG, IMAGE_EXTRACT_NO_DTB, "raspi3ap");
        /* a disk image is no dtb */
        {
                Run run;
                run_image("good.img", "raspi3b", true, 0, &run);
                CHECK(run.r == -EBADMSG && run.err == IMAGE_EXTRACT_BAD_DTB);
                run_done(&run);
        }
        /* a used output directory */
        {
                Run run;
                char p[256];
                int fd, dir;

                run_image("good.img", "raspi3b", false, 0, &run);
                CHECK(run.r == 0);
                image_extract_result_done(&run.res);
                free(run.msg);
                snprintf(p, sizeof(p), "%s/good.img", fx);
                fd = open(p, O_RDONLY | O_CLOEXEC);
                dir = open(run.outdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                CHECK(fd >= 0 && dir >= 0);
                run.r = image_extract_run(helper, fd, dir, "raspi3b", false, 0, 0, &run.res, &run.err,
                                          &run.msg);
                CHECK(run.r == -EIO && run.err == IMAGE_EXTRACT_IO);
                CHECK_CONTAINS(run.msg, "sd.img");
                close(fd);
                close(dir);
                run_done(&run);
        }
}

int main(int argc, char *argv[]) {
        char cmd[1024];
        int r;

        if (argc != 4) {
                fprintf(stderr, "usage: %s HELPER SCRIPT DTB\n", argv[0]);
                return 1;
        }
        /* absolute: the script changes directory, and so may we */
        helper = realpath(argv[1], NULL);
        script = realpath(argv[2], NULL);
        dtb_src = realpath(argv[3], NULL);
        CHECK(helper && script && dtb_src);
        if (!tool_exists("sfdisk") || !tool_exists("mkfs.vfat") || !tool_exists("mcopy") ||
            !tool_exists("xz")) {
                printf("test-image-extract: skipped (needs sfdisk, mkfs.vfat, mcopy, xz)\n");
                return 77;
        }

        CHECK(mkdtemp(tmp));
        snprintf(fx, sizeof(fx), "%s/fx", tmp);
        snprintf(cmd, sizeof(cmd), "'%s' '%s' '%s'", script, fx, dtb_src);
        r = system(cmd);
        CHECK(r == 0);

        test_good();
        test_failures();

        snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", tmp);
        CHECK(system(cmd) == 0);
        free((char *)helper);
        free((char *)script);
        free((char *)dtb_src);
        printf("test-image-extract: OK\n");
        return 0;
}
