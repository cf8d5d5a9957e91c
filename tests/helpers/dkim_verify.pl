#!/usr/bin/perl
# Verifies DKIM signatures with Perl's Mail::DKIM, an implementation independent of dkimpy
# and of digest/send/dkim.py; the public keys come from a file instead of DNS.
#
#   perl tests/helpers/dkim_verify.pl RECORDS [MESSAGE ...]   (no MESSAGE: one on stdin)
#
# RECORDS holds one "NAME<TAB>TXT value" per line (s1._domainkey.example.org<TAB>v=DKIM1; ...).
# Prints one line per message: its file name ("-" for stdin), the overall result, then each
# signature as ALGORITHM=RESULT, tab-separated; "(...)" details keep their spaces.
use strict;
use warnings;

use MIME::Base64 ();
use Mail::DKIM::Verifier;
use Net::DNS;

my $records_file = shift @ARGV or die "usage: $0 RECORDS [MESSAGE ...]\n";
my %records;
open my $records_in, '<', $records_file or die "$records_file: $!\n";
while ( my $line = <$records_in> ) {
    chomp $line;
    my ( $name, $value ) = split /\t/, $line, 2;
    $records{ lc $name } = $value if defined $value;
}
close $records_in;

{
    # The stub resolver: a TXT RR built from RECORDS, NXDOMAIN for any other name. Mail::DKIM
    # asks through this one function (query_async calls it too).
    no warnings 'redefine';
    *Mail::DKIM::DNS::query = sub {
        my ( $domain, $type ) = @_;
        my $value = $records{ lc $domain };
        if ( !defined $value || uc $type ne 'TXT' ) {
            $@ = 'NXDOMAIN';
            return;
        }
        $@ = 'NOERROR';
        my @strings = $value =~ /(.{1,255})/gs;    # character-strings of 255 bytes at most
        return Net::DNS::RR->new( name => $domain, type => 'TXT', txtdata => \@strings );
    };
}

# Ed25519-SHA256 (RFC 8463) for a Mail::DKIM that predates it (Debian 12 ships 1.20230212):
# Mail::DKIM still parses, canonicalises and hashes the message, and CryptX's Ed25519
# (libcryptx-perl) checks the signature over that SHA-256 hash. A Mail::DKIM that knows the
# algorithm itself is used as it is.
my $native_ed25519 = eval { require Mail::DKIM::Algorithm::ed25519_sha256; 1 };
if ( !$native_ed25519 && eval { require Crypt::PK::Ed25519; 1 } ) {
    no warnings qw(redefine once);
    my $algorithm_class = \&Mail::DKIM::Signature::get_algorithm_class;
    *Mail::DKIM::Signature::get_algorithm_class = sub {
        my ( $self, $algorithm ) = @_;
        return 'Local::Ed25519Sha256' if $algorithm eq 'ed25519-sha256';
        return $algorithm_class->(@_);
    };
    my $hash_algorithm = \&Mail::DKIM::Signature::hash_algorithm;
    *Mail::DKIM::Signature::hash_algorithm = sub {
        return 'sha256' if $_[0]->algorithm eq 'ed25519-sha256';
        return $hash_algorithm->(@_);
    };
    my $check = \&Mail::DKIM::PublicKey::check;
    *Mail::DKIM::PublicKey::check = sub {
        my ($self) = @_;
        return $check->(@_) unless ( $self->get_tag('k') // '' ) eq 'ed25519';
        my $data = $self->data // '';
        die "invalid data\n" unless length( MIME::Base64::decode_base64($data) ) == 32;
        return 1;
    };
    # The verifier asks every key its size in bits through the OpenSSL RSA object.
    *Mail::DKIM::PublicKey::cork = sub {
        my ($self) = @_;
        return Mail::DKIM::Key::cork(@_) unless ( $self->get_tag('k') // '' ) eq 'ed25519';
        return bless {}, 'Local::Ed25519Size';
    };
}

package Local::Ed25519Size {
    sub size { return 32 }    # bytes, as Crypt::OpenSSL::RSA answers
}

package Local::Ed25519Sha256 {
    use parent -norequire, 'Mail::DKIM::Algorithm::rsa_sha256';
    use MIME::Base64 qw(decode_base64);

    sub verify {
        my ($self) = @_;
        my $public = decode_base64( $self->signature->get_public_key->data );
        my $key    = Crypt::PK::Ed25519->new;
        $key->import_key_raw( $public, 'public' );
        my $signature = decode_base64( $self->signature->data );
        return unless $key->verify_message( $signature, $self->{header_digest}->digest );
        return $self->check_body_hash;
    }
}

package main;

sub verify {
    my ( $name, $handle ) = @_;
    binmode $handle;
    my $dkim = Mail::DKIM::Verifier->new();
    while ( my $line = <$handle> ) {
        $line =~ s/\015?\012\z//;
        $dkim->PRINT("$line\015\012");
    }
    $dkim->CLOSE;
    my @each = map { $_->algorithm . '=' . $_->result_detail } $dkim->signatures;
    print join( "\t", $name, $dkim->result, @each ), "\n";
}

if (@ARGV) {
    for my $file (@ARGV) {
        open my $in, '<', $file or die "$file: $!\n";
        verify( $file, $in );
        close $in;
    }
}
else {
    verify( '-', \*STDIN );
}
