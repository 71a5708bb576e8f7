/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* piemuctl: the command-line client of piemud, in the manner of machinectl. A table of verbs with
 * argument counts; global options plus per-verb options that are rejected on verbs they do not apply
 * to; tables for people and --json for programs; exit codes that say what went wrong (see ctl.h).
 *
 * This file holds the verb table, the help and main(). The command line is read in ctl-options.c;
 * the verbs live by family: ctl-boards.c, ctl-status.c, ctl-images.c (with ctl-import.c),
 * ctl-console.c, ctl-watch.c, ctl-pins.c and ctl-wires.c. */

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

#define VERB_ANY UINT_MAX

typedef struct Verb {
        const char *name;
        unsigned min_args, max_args; /* including the verb itself */
        int (*dispatch)(int argc, char *argv[]);
        unsigned options;
        const char *usage;
        const char *help;
} Verb;

static const Verb *find_verb(const char *name);

/* ---- help ---- */

static void print_exit_codes(void) {
        printf("\nExit status:\n"
               "  0  success                      4  wrong state: not running, already running,\n"
               "  1  other failure                   already exists, busy\n"
               "  2  bad usage or argument        5  access denied\n"
               "  3  no such board or image       6  timed out (wait, or piemud too slow)\n"
               "                                  7  piemud (or the bus) not reachable\n");
}

static int help(void) {
        printf("piemuctl [OPTIONS...] COMMAND ...\n\n"
               "Create, run and wire up emulated Raspberry Pi boards managed by piemud.\n\n"
               "Boards:\n"
               "  list                     List boards (the default command)\n"
               "  status NAME              Show a board's properties and recent console output\n"
               "  create NAME              Create a board (--image, --persistent, --cmdline, --model,\n"
               "                           --i2c)\n"
               "  delete NAME...           Delete boards, stopping them first\n"
               "  start NAME...            Power boards on\n"
               "  stop NAME...             Power boards off (like pulling the cable)\n"
               "  restart NAME...          Stop and start boards\n"
               "  models                   List the Raspberry Pi models boards can be\n"
               "\nConsole and GPIO:\n"
               "  console NAME             Attach to the serial console (leave with ^]^]^])\n"
               "  send NAME TEXT...        Type TEXT and Enter on the serial console\n"
               "  watch NAME               Print console output, pin and state changes until Ctrl-C\n"
               "  wait NAME CONDITION...   Wait for --state, --ready, --serial or --pin\n"
               "  get-pin NAME PIN         Print the level of a BCM pin (0 or 1)\n"
               "  set-pin NAME PIN 0|1     Drive an input pin\n"
               "  pins NAME                Show the levels of all 54 pins\n"
               "  trace NAME --vcd=FILE    Record pin changes as a Value Change Dump\n"
               "  set-sensor NAME ADDRESS PROPERTY VALUE\n"
               "                           Set an I2C sensor's value (see create --i2c)\n"
               "\nWires between boards:\n"
               "  wire FROM:PIN TO:PIN     Drive TO's pin with FROM's level from now on\n"
               "  unwire ID...             Remove wires\n"
               "  wires                    List the wires\n"
               "\nImages:\n"
               "  images                   List images\n"
               "  import-image NAME FILE   Import a disk image (.img, .img.xz; - for stdin)\n"
               "  remove-image NAME        Remove an image\n"
               "  help [COMMAND]           Show this help, or help for a command\n"
               "\nOptions:\n"
               "  -h --help                Show this help; 'piemuctl COMMAND --help' for a command\n"
               "     --version             Show the version\n"
               "     --no-pager            Do not pipe output into a pager\n"
               "     --no-legend           Do not print column headers and the summary line\n"
               "  -j --json[=MODE]         Print JSON: short, pretty or off (default with -j:\n"
               "                           pretty on a terminal, short otherwise)\n"
               "     --no-ask-password     Do not ask for a password when polkit wants one\n"
               "  -q --quiet               Do not print informational messages\n"
               "     --timeout=TIME        wait: give up after TIME (default: infinity);\n"
               "                           others: time allowed for each call to piemud\n"
               "                           (e.g. 30, 1.5s, 500ms, 2min, infinity)\n"
               "     --user                Talk to a piemud on the user bus\n"
               "  -H --host=[USER@]HOST[:PORT]\n"
               "                           Manage the boards of another host, over ssh (its\n"
               "                           systemd-stdio-bridge); that user's rights there apply\n");
        print_exit_codes();
        printf("\nEnvironment: PIEMU_BUS_ADDRESS (use that bus instead of the system bus),\n"
               "PIEMU_PAGER or PAGER (the pager; empty or \"cat\" disables it).\n"
               "\nSee the piemuctl(1) manual page for details.\n");
        return CTL_EXIT_OK;
}

static int help_verb(const Verb *v) {
        printf("Usage: piemuctl [OPTIONS...] %s\n\n%s", v->usage, v->help);
        printf("\nGlobal options (--json, --no-pager, --no-legend, --no-ask-password, --quiet,\n"
               "--timeout, --user, -H/--host): see 'piemuctl --help'.\n");
        print_exit_codes();
        return CTL_EXIT_OK;
}

static int verb_help(int argc, char *argv[]) {
        const Verb *v;

        if (argc < 2)
                return help();
        v = find_verb(argv[1]);
        if (!v) {
                fprintf(stderr, "Unknown command \"%s\". See 'piemuctl --help'.\n", argv[1]);
                return CTL_EXIT_USAGE;
        }
        return help_verb(v);
}

static const Verb verbs[] = {
        {"list", 1, 1, verb_list, 0, "list",
         "List the boards piemud knows, with their state and owner. --json prints an array of\n"
         "{\"name\", \"state\", \"owner\" (uid), \"path\"} objects.\n"},
        {"status", 2, 2, verb_status, OPT_LINES, "status NAME [-n LINES]",
         "Show all properties of a board and the last lines of its serial console.\n\n"
         "Options:\n"
         "  -n --lines=N             Show N console lines (default 10)\n\n"
         "--json prints one object with every property (name, image, model, cmdline, owner,\n"
         "state, persistent, guest_ready, serial_port, gpio_port, last_error,\n"
         "dropped_gpio_lines, gpio_path, path) and recent_serial: the whole recent console buffer\n"
         "as text, bytes that are not UTF-8 written as \\xNN, or null if you may not read the\n"
         "console.\n"},
        {"create", 2, 2, verb_create, OPT_IMAGE | OPT_PERSISTENT | OPT_CMDLINE | OPT_MODEL | OPT_I2C,
         "create NAME [--image=IMAGE] [--persistent] [--cmdline=ARGS] [--model=MODEL]\n"
         "                                 [--i2c=DEVICE@ADDRESS...]",
         "Create a board (stopped). Names are 1-63 characters from A-Z a-z 0-9 _ . - starting\n"
         "with a letter or digit.\n\n"
         "Options:\n"
         "     --image=IMAGE        Boot this image from 'piemuctl images' (default: the model's\n"
         "                          default image)\n"
         "     --persistent         Keep the board's disk changes across stop and start\n"
         "     --cmdline=ARGS       Append ARGS to the kernel command line\n"
         "     --model=MODEL        The Raspberry Pi model, one of 'piemuctl models' (default:\n"
         "                          the first listed there), which also names each model's\n"
         "                          default image; an image that does not boot on the model\n"
         "                          is refused with the models it boots on\n"
         "     --i2c=DEVICE@ADDRESS Put a QEMU I2C device on the header's bus (the guest's i2c-1);\n"
         "                          repeat for more. Devices: tmp105, tmp421 (temperature\n"
         "                          sensors), ds1338 (clock); addresses 0x08-0x77, e.g.\n"
         "                          --i2c=tmp105@0x48. Set a sensor with 'piemuctl set-sensor'.\n"},
        {"delete", 2, VERB_ANY, verb_delete, 0, "delete NAME...",
         "Delete boards: stop them if running and remove their disk overlay.\n"},
        {"start", 2, VERB_ANY, verb_start, 0, "start NAME...",
         "Power boards on. Returns once each board is running; the guest then boots (its shell\n"
         "prompt appears on the console some seconds later: see 'piemuctl wait --serial').\n"},
        {"stop", 2, VERB_ANY, verb_stop, 0, "stop NAME...",
         "Power boards off at once, like pulling the cable of a real Pi.\n"},
        {"restart", 2, VERB_ANY, verb_restart, 0, "restart NAME...",
         "Stop boards (if running) and start them again.\n"},
        {"images", 1, 1, verb_images, 0, "images",
         "List the images boards can boot. --json prints an array of {\"name\", \"description\"}.\n"},
        {"models", 1, 1, verb_models, 0, "models",
         "List the Raspberry Pi models piemud can emulate (create --model), the default first, with\n"
         "the image a board of that model boots when create is given no --image, the board's\n"
         "revision code, RAM and CPUs. --json prints an array of {\"name\", \"description\",\n"
         "\"default_image\", \"revision\" (hex, as a string), \"memory_mib\", \"cpus\"}.\n"},
        {"import-image", 2, 3, verb_import_image,
         OPT_KERNEL | OPT_DTB | OPT_SD | OPT_INITRD | OPT_DESCRIPTION | OPT_CMDLINE | OPT_MODEL,
         "import-image NAME FILE.img[.xz]|- [--description=TEXT]\n"
         "                                 [--model=MODEL]\n"
         "  import-image NAME --kernel=FILE --dtb=FILE --sd=FILE [--initrd=FILE]\n"
         "                                 [--description=TEXT] [--cmdline=ARGS]",
         "Add an image to piemud's catalog. piemuctl opens the files with your permissions and\n"
         "passes them to piemud as file descriptors; piemud never opens a path you name.\n\n"
         "With one FILE, a Raspberry Pi OS release as downloaded (.img, or .img.xz): piemud's\n"
         "confined extractor reads its MBR and FAT boot partition (config.txt, cmdline.txt), takes\n"
         "the kernel, initramfs and device tree for the model (bcm2710-rpi-3-b.dtb for raspi3b),\n"
         "and stores them with the whole disk as the SD card. Boards then boot it with no\n"
         "--cmdline; the console is always the PL011 (ttyAMA0). Errors name what is missing:\n"
         "ImageNotMBR, ImageNoBootPartition, ImageNoKernel, ImageNoDeviceTree, ImageTruncated,\n"
         "ImageTooLarge, ImageInvalid. Expect minutes for a full release. FILE - reads the\n"
         "image from standard input (a pipe or a file, not a terminal), copied first into an\n"
         "unnamed file under /var/tmp.\n\n"
         "With --kernel, --dtb and --sd, those files as they are (the dtb gets the board's\n"
         "revision).\n\n"
         "With -H, FILE is sent over ssh to 'piemuctl import-image NAME -' on that host, which\n"
         "must have piemuctl; the ssh user's rights there apply. --kernel, --dtb and --sd need\n"
         "descriptor passing and do not work with -H.\n\n"
         "Options:\n"
         "     --model=MODEL        The board model the image is taken apart for (raspi3b)\n"
         "     --kernel=FILE        Kernel image (required)\n"
         "     --dtb=FILE           Device tree blob (required)\n"
         "     --sd=FILE            SD card image (required)\n"
         "     --initrd=FILE        Initial ramdisk\n"
         "     --description=TEXT   One line shown by 'piemuctl images'\n"
         "     --cmdline=ARGS       Default kernel command line for boards using the image\n"},
        {"remove-image", 2, 2, verb_remove_image, 0, "remove-image NAME",
         "Remove an image from the catalog. Refused while a board uses it.\n"},
        {"send", 3, VERB_ANY, verb_send, OPT_NO_NEWLINE, "send NAME [--no-newline] TEXT...",
         "Type TEXT on the board's serial console, followed by Enter (a newline). Several words\n"
         "are joined by single spaces, like echo. Put -- before TEXT that starts with '-'.\n\n"
         "Options:\n"
         "     --no-newline         Do not add the newline\n"},
        {"set-pin", 4, 4, verb_set_pin, 0, "set-pin NAME PIN 0|1",
         "Drive BCM GPIO pin PIN (0-53) of a running board low (0) or high (1), as if wired to\n"
         "an external signal.\n"},
        {"get-pin", 3, 3, verb_get_pin, 0, "get-pin NAME PIN",
         "Print the level (0 or 1) of BCM GPIO pin PIN (0-53). --json prints {\"pin\", \"level\"}.\n"},
        {"pins", 2, 2, verb_pins, 0, "pins NAME",
         "Show the levels of all 54 GPIO pins. --json prints an array of {\"pin\", \"level\"}.\n"},
        {"watch", 2, 2, verb_watch, 0, "watch NAME",
         "Print what happens on a board until Ctrl-C, one line per event, each with a timestamp:\n"
         "  2026-11-21 20:01:02.123456 serial: <console line>\n"
         "  2026-11-21 20:01:02.200000 gpio 23 = 1\n"
         "  2026-11-21 20:01:05.000000 state stopped\n"
         "  2026-11-21 20:01:05.000000 guest-ready no\n"
         "Control characters in console output are shown as \\xNN. A line without newline (a\n"
         "prompt) is printed after 1 s of quiet. With --json, one JSON object per line:\n"
         "{\"time\", \"timestamp_usec\", \"type\": \"serial\"|\"gpio\"|\"state\"|\"guest-ready\", and\n"
         "\"text\", \"pin\" and \"level\", \"state\" or \"guest_ready\"}.\n"},
        {"console", 2, 2, verb_console, 0, "console NAME",
         "Attach the terminal to the board's serial console. Every key goes to the board,\n"
         "Ctrl-C included; press ^] (Ctrl-]) three times within one second to leave. The\n"
         "terminal is restored however piemuctl ends. With stdin not a terminal, input is\n"
         "forwarded until end of file. Ends with status 4 if the board stops.\n\n"
         "Over a connection that cannot pass file descriptors (-H: ssh and\n"
         "systemd-stdio-bridge) the console goes through the bus instead: output arrives as\n"
         "Watch() signals and keys go out with SendSerial(). That is slower, and output is\n"
         "held back like watch's when the connection cannot keep up.\n"},
        {"wait", 2, 2, verb_wait, OPT_STATE | OPT_READY | OPT_SERIAL | OPT_PIN | OPT_SINCE_NOW,
         "wait NAME [--state=STATE] [--ready] [--serial=REGEX] [--pin=PIN=0|1]\n"
         "                         [--since-now] [--timeout=TIME]",
         "Wait until every given condition holds, then exit 0. Exits 6 when --timeout passes\n"
         "(default: wait forever), and 4 when waiting for --ready, --serial or --pin on a board\n"
         "that is or becomes stopped or crashed.\n\n"
         "Options:\n"
         "     --state=STATE        The board is in STATE: stopped, starting, running,\n"
         "                          stopping or crashed\n"
         "     --ready              The guest's GPIO shim has reported in (GuestReady)\n"
         "     --serial=REGEX       The console printed text matching REGEX (POSIX extended,\n"
         "                          matched line-wise: ^ and $ match at line ends; carriage\n"
         "                          returns are removed). Output already in the recent console\n"
         "                          buffer counts, unless --since-now is given\n"
         "     --since-now          Only match console output printed after wait started\n"
         "     --pin=PIN=0|1        BCM pin PIN has that level\n"
         "     --timeout=TIME       Give up after TIME (e.g. 30, 1.5s, 2min)\n\n"
         "Example: piemuctl start b && piemuctl wait b --serial='piemu:.*# ' --timeout=2min\n"},
        {"wire", 3, 3, verb_wire, 0, "wire FROM:PIN TO:PIN",
         "Connect a pin of one board to a pin of another (or the same) board: whenever FROM's pin\n"
         "changes, piemud drives TO's pin to the same level, as set-pin does (remembered, and\n"
         "applied again after TO reboots). Prints the wire's id, FROM:PIN:TO:PIN. You must be\n"
         "allowed to manage both boards. A pin takes one wire in; one pin may drive many; a\n"
         "wire that would close a loop is refused. Wires are kept with the boards (also across\n"
         "a piemud restart) and go when either board is deleted.\n"},
        {"unwire", 2, VERB_ANY, verb_unwire, 0, "unwire ID...",
         "Remove wires by id (see 'piemuctl wires'). The pin it drove keeps its last level.\n"
         "The manager of either board may remove a wire.\n"},
        {"wires", 1, 1, verb_wires, 0, "wires",
         "List the wires between boards. --json prints an array of {\"id\", \"from_board\",\n"
         "\"from_pin\", \"to_board\", \"to_pin\"}.\n"},
        {"set-sensor", 5, 5, verb_set_sensor, 0, "set-sensor NAME ADDRESS PROPERTY VALUE",
         "Set an integer property of the I2C device at ADDRESS (see create --i2c); the guest's\n"
         "driver reads it from then on. For tmp105: temperature, in m°C (42500 is 42.5 °C);\n"
         "for tmp421: temperature0..temperature3. Example:\n"
         "  piemuctl set-sensor b1 0x48 temperature 42500\n"},
        {"trace", 2, 2, verb_trace, OPT_VCD | OPT_PINS | OPT_DURATION,
         "trace NAME --vcd=FILE [--pins=LIST] [--duration=TIME]",
         "Record the board's pin changes into a Value Change Dump, for GTKWave, PulseView or\n"
         "sigrok. Time stamps are those of the GpioChanged events themselves, in microseconds\n"
         "from the start of the trace; the dump starts with the levels GetPins reads. Ends after\n"
         "--duration, on Ctrl-C, or when the board stops.\n\n"
         "Options:\n"
         "     --vcd=FILE           Write the dump to FILE (- for standard output)\n"
         "     --pins=LIST          BCM pins to record, e.g. 17,23 or 0-27 (default 0-27, the\n"
         "                          40-pin header's GPIOs)\n"
         "     --duration=TIME      Stop after TIME (e.g. 10, 2.5s, 1min); default: until Ctrl-C\n"},
        {"help", 1, 2, verb_help, 0, "help [COMMAND]", "Show the help, or the help for COMMAND.\n"},
};

static const Verb *find_verb(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(verbs[i].name, name))
                        return &verbs[i];
        return NULL;
}

int main(int argc, char *argv[]) {
        const char *verb_name;
        const Verb *v;
        int n_args, r;

        r = ctl_parse_argv(argc, argv);
        if (r <= 0)
                return -r;

        verb_name = optind < argc ? argv[optind] : "list";
        v = find_verb(verb_name);
        if (!v) {
                _cleanup_free_ char *e = escape_for_terminal(verb_name, strlen(verb_name), false);
                fprintf(stderr, "Unknown command \"%s\". See 'piemuctl --help'.\n", e ?: "?");
                return CTL_EXIT_USAGE;
        }

        if (arg_help)
                return optind < argc ? help_verb(v) : help();

        r = ctl_check_verb_options(v->name, v->options);
        if (r != CTL_EXIT_OK)
                return r;

        n_args = optind < argc ? argc - optind : 1;
        if ((unsigned)n_args < v->min_args || (v->max_args != VERB_ANY && (unsigned)n_args > v->max_args)) {
                fprintf(stderr, "%s arguments for '%s'.\nUsage: piemuctl %s\n",
                        (unsigned)n_args < v->min_args ? "Too few" : "Too many", v->name, v->usage);
                return CTL_EXIT_USAGE;
        }

        r = v->dispatch(n_args, optind < argc ? argv + optind : (char *[]){(char *)"list", NULL});

        pager_close();
        polkit_agent_close();
        ctl_bus_close();
        return r;
}
