#!/usr/bin/perl
# SPDX-License-Identifier: LGPL-2.1-or-later
# The stranger of tests/system/systemd-host/smoke.sh: run as a user who may not touch piemu's
# boards, it tries as fast as it can to bind and listen on 127.0.0.1:PORT for each PORT given
# (SO_REUSEADDR, as a squatter would, so that the lines' TIME_WAIT connections are no obstacle),
# until STOPFILE exists. A success means the port was free: it is let go of at once, printed as
# "BOUND PORT after N attempts", and counted. Prints "started" before its first try and ends with
#   attempts=N bound=M
# Perl because perl-base is in every Debian system; no test tool needs installing for it.
# Usage: squat.pl STOPFILE PORT...
use strict;
use warnings;
use Socket qw(AF_INET SOCK_STREAM SOL_SOCKET SO_REUSEADDR inet_aton pack_sockaddr_in);

my ($stop, @ports) = @ARGV;
die "usage: squat.pl STOPFILE PORT...\n" unless defined $stop && @ports;
$| = 1;

my @addrs = map { pack_sockaddr_in($_, inet_aton('127.0.0.1')) } @ports;
my ($attempts, $bound) = (0, 0);
print "started\n";
while (!-e $stop) {
    for my $i (0 .. $#ports) {
        socket(my $s, AF_INET, SOCK_STREAM, 0) or die "socket: $!\n";
        setsockopt($s, SOL_SOCKET, SO_REUSEADDR, pack('i', 1));
        $attempts++;
        if (bind($s, $addrs[$i]) && listen($s, 1)) {
            $bound++;
            print "BOUND $ports[$i] after $attempts attempts\n";
        }
        close($s);
    }
}
print "attempts=$attempts bound=$bound\n";
