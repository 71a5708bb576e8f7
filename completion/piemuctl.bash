# shellcheck shell=bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# bash completion for piemuctl(1). Installed as .../bash-completion/completions/piemuctl and loaded
# on demand by the bash-completion package, whose helpers (_init_completion, _filedir) it uses.

__piemuctl_names() {
        # Board and image names never contain spaces; errors (no piemud) just mean no candidates.
        command piemuctl --no-legend --no-pager --no-ask-password --quiet --timeout=3 "$1" 2>/dev/null |
                while read -r name _; do printf '%s\n' "$name"; done
}

_piemuctl() {
        local cur prev words cword split
        _init_completion -s || return

        local verbs='list status create delete start stop restart models images import-image remove-image
                     send set-pin get-pin pins watch console wait trace set-sensor
                     wire unwire wires help'
        local global_opts='-h --help --version --no-pager --no-legend -j --json= --no-ask-password
                           -q --quiet --timeout= --user -H --host='
        local -A verb_opts=(
                [status]='-n --lines='
                [create]='--image= --persistent --cmdline= --model= --i2c='
                [trace]='--vcd= --pins= --duration='
                [import-image]='--kernel= --dtb= --sd= --initrd= --description= --cmdline= --model='
                [send]='--no-newline'
                [wait]='--state= --ready --serial= --pin= --since-now'
        )

        case $prev in
        --image)
                mapfile -t COMPREPLY < <(compgen -W "$(__piemuctl_names images)" -- "$cur")
                return ;;
        --model)
                # The models piemud offers (its Models property): no list is kept here.
                mapfile -t COMPREPLY < <(compgen -W "$(__piemuctl_names models)" -- "$cur")
                return ;;
        --kernel | --dtb | --sd | --initrd | --vcd)
                _filedir
                return ;;
        --i2c)
                mapfile -t COMPREPLY < <(compgen -W 'tmp105@0x48 tmp421@0x4c ds1338@0x68' -- "$cur")
                return ;;
        --json)
                mapfile -t COMPREPLY < <(compgen -W 'short pretty off' -- "$cur")
                return ;;
        -H | --host)
                # [USER@]HOST from known_hosts and ssh_config, as for ssh (bash-completion's helper).
                declare -F _known_hosts_real >/dev/null && _known_hosts_real -- "$cur"
                return ;;
        --state)
                mapfile -t COMPREPLY < <(compgen -W 'stopped starting running stopping crashed' -- "$cur")
                return ;;
        --timeout | --cmdline | --description | --lines | -n | --serial | --pin | --pins | \
                --duration)
                return ;;
        esac
        $split && return

        # Find the verb and count its arguments, skipping options and their separate arguments.
        local i w verb='' nargs=0 remote=''
        for ((i = 1; i < cword; i++)); do
                w=${words[i]}
                case $w in
                -H | --host)
                        remote=1
                        ((i++))
                        continue ;;
                --timeout | --image | --cmdline | --model | --kernel | --dtb | --sd | --initrd | \
                        --description | --lines | -n | --state | --serial | --pin | --i2c | --vcd | --pins | \
                        --duration)
                        ((i++))
                        continue ;;
                -*)
                        continue ;;
                esac
                if [[ -z $verb ]]; then
                        verb=$w
                else
                        ((nargs++))
                fi
        done

        if [[ $cur == -* ]]; then
                mapfile -t COMPREPLY < <(compgen -W "$global_opts ${verb:+${verb_opts[$verb]:-}}" -- "$cur")
                [[ ${COMPREPLY[*]} == *= ]] && compopt -o nospace
                return
        fi

        if [[ -z $verb ]]; then
                mapfile -t COMPREPLY < <(compgen -W "$verbs" -- "$cur")
                return
        fi

        if [[ $verb == import-image ]] && ((nargs == 1)); then
                _filedir '@(img|xz)'
                return
        fi
        # Names on another host would need an ssh login per Tab (and a password prompt, perhaps):
        # none are offered with -H.
        [[ -n $remote ]] && return

        local candidates=''
        case $verb in
        status | pins | watch | console | wait | trace | set-sensor)
                ((nargs == 0)) && candidates=$(__piemuctl_names list) ;;
        wire)
                # FROM:PIN TO:PIN: a board name and its colon; the pin is typed.
                ((nargs < 2)) && candidates=$(__piemuctl_names list | sed 's/$/:/') && compopt -o nospace ;;
        unwire)
                candidates=$(__piemuctl_names wires) ;;
        delete | start | stop | restart)
                candidates=$(__piemuctl_names list) ;;
        send)
                ((nargs == 0)) && candidates=$(__piemuctl_names list) ;;
        get-pin | set-pin)
                if ((nargs == 0)); then
                        candidates=$(__piemuctl_names list)
                elif ((nargs == 1)); then
                        candidates=$(seq 0 53)
                elif ((nargs == 2)) && [[ $verb == set-pin ]]; then
                        candidates='0 1'
                fi ;;
        remove-image)
                ((nargs == 0)) && candidates=$(__piemuctl_names images) ;;
        help)
                ((nargs == 0)) && candidates=$verbs ;;
        esac
        mapfile -t COMPREPLY < <(compgen -W "$candidates" -- "$cur")
}

complete -F _piemuctl piemuctl
