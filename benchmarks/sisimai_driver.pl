#!/usr/bin/perl
# Peer driver for benchmarks/engine_throughput.py: decode every file named on standard input
# with Sisimai (Debian's libsisimai-perl), PASSES times, the way Sisimai->make does
# (Sisimai::Mail -> Sisimai::Message -> Sisimai::Data). Prints
# "messages=<read per pass> records=<per pass> steady_seconds=<passes after the first>
# steady_cpu_seconds=<the CPU time, user + system, of those passes>".
use strict;
use warnings;
use Time::HiRes qw(time);
use Sisimai::Mail;
use Sisimai::Message;
use Sisimai::Data;

my $passes = shift @ARGV // 5;
chomp(my @files = <STDIN>);

sub one_pass {
    my ($messages, $records) = (0, 0);
    for my $path (@files) {
        my $mail = Sisimai::Mail->new($path) or next;
        while (my $r = $mail->read) {
            $messages++;
            my $mesg = Sisimai::Message->new('data' => $r) or next;
            my $data = Sisimai::Data->make('data' => $mesg, 'delivered' => 1,
                                           'origin' => $mail->data->path) or next;
            $records += scalar @$data;
        }
    }
    return ($messages, $records);
}

my ($messages, $records) = one_pass();    # the first pass warms up (module loading, caches)
my $start = time;
my ($user, $system) = times;
one_pass() for 2 .. $passes;
my $steady = time - $start;
my ($user_end, $system_end) = times;
my $cpu = ($user_end - $user) + ($system_end - $system);
printf "messages=%d records=%d steady_seconds=%.6f steady_cpu_seconds=%.6f\n", $messages, $records,
    $steady, $cpu;
