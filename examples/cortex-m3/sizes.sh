#!/usr/bin/env bash
# Prints a built firmware's flash and RAM use (arm-none-eabi-size) and how
# much of its code comes from the crates of interest: sums of function
# sizes from the symbol table. A function counts for the crate its path
# starts with, so `kontiki::Node<rand_chacha::ChaCha8Rng>::handle` is
# kontiki's; the second kontiki line adds standard-library generics made
# for kontiki's types (`Vec<kontiki::Entry>::clone`, drop glue, ...).
# Usage: sizes.sh path/to/elf
set -euo pipefail
shopt -s extglob
elf=$1
arm-none-eabi-size "$elf"
functions=$(arm-none-eabi-nm -C --print-size "$elf" | awk '$3 == "t" || $3 == "T"')
sum() {
    local pattern=$1 total=0
    while read -r _ size _ name; do
        # shellcheck disable=SC2053 # the pattern is a glob on purpose
        if [[ $name == $pattern && $name != *kontiki_cortex_m3* ]]; then
            total=$((total + 16#$size))
        fi
    done <<<"$functions"
    echo "$total"
}
printf '%-48s %6d\n' "kontiki, its own functions" "$(sum '?(<)kontiki::*')"
printf '%-48s %6d\n' "kontiki, with generics made for its types" "$(sum '*kontiki::*')"
printf '%-48s %6d\n' "bytes" "$(sum '?(<)bytes::*')"
printf '%-48s %6d\n' "RNG (rand_core, rand_chacha)" "$(sum '?(<)rand_c*')"
printf '%-48s %6d\n' "allocator (embedded_alloc)" "$(sum '?(<)embedded_alloc::*')"
