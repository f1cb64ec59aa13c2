"""``pyrt completion bash|zsh|fish``: shell completion scripts generated from the parser
(:mod:`.cmdtree`), plugins' commands and flags included, as ``docker completion`` does.

The script carries the command tree as data (commands, subcommands, options, which
options take a value and their choices, what each positional argument names) and one
small function that finds where the cursor is: the words it completes are commands,
options, an option's choices, or names read from the store (``pyrt ps -a``, ``images``,
``volume ls``, ``network ls``, with the line's own ``--root``/``--runroot``).  Nothing is
run for a Tab except that one listing.  zsh runs the bash function through zsh's
``bashcompinit``; fish gets its own function over the same data.
"""
from __future__ import annotations

import sys

SHELLS = ("bash", "zsh", "fish")
#: what ``pyrt completion`` writes: a shell's script, or the man pages (``man DIR``)
KINDS = SHELLS + ("man",)

#: the listing each kind of name comes from (global options of the line are put first)
LISTINGS = {
    "container": "ps -a --format '{{.Names}}'",
    "image": "images --format '{{.Repository}}:{{.Tag}}'",
    "volume": "volume ls -q",
    "network": "network ls --format '{{.Name}}'",
}
#: global options whose values the listing needs (the line's store)
STORE_OPTIONS = ("--root", "--runroot", "--storage-driver", "-s", "--config")


def _q(s: str) -> str:
    """A word in single quotes for bash and fish alike (the words are commands, flags and
    choices: a quote in one, which no parser has, is dropped rather than escaped two ways)."""
    return "'" + s.replace("'", "") + "'"


def _keys(cmds) -> list:
    """``(key, command)`` for every command under each of its names (aliases too: ``pyrt
    container ls`` and ``pyrt container list`` complete alike)."""
    by_path = {c.path: c for c in cmds}
    out = []
    for c in cmds:
        prefixes = [()]
        for depth in range(1, len(c.path) + 1):
            node = by_path[c.path[:depth]]
            names = [c.path[depth - 1]] + node.aliases
            prefixes = [p + (n,) for p in prefixes for n in names]
        # the root is "pyrt": bash's associative arrays have no empty key
        out.extend((" ".join(("pyrt",) + p), c) for p in prefixes)
    return out


def _args_spec(c) -> str:
    """The positionals as words: KIND (or -), + when it repeats, ! for the container's
    command (the rest of the line is not pyrt's)."""
    words = []
    for p in c.positionals:
        kind = ("c:" + ",".join(p.choices)) if p.choices else (p.kind or "-")
        words.append(kind + ("!" if p.rest else "+" if p.repeats else ""))
    return " ".join(words)


def _data(cmds) -> dict:
    subs, opts, valopts, args, choices, valkinds = {}, {}, {}, {}, {}, {}
    from .cmdtree import _kind

    for key, c in _keys(cmds):
        subs[key] = " ".join(c.subcommands)
        opts[key] = " ".join(f for o in c.options for f in o.flags)
        valopts[key] = " ".join(f for o in c.options if o.takes_value for f in o.flags)
        args[key] = _args_spec(c)
        for o in c.options:
            for f in o.flags:
                if o.choices:
                    choices[f"{key}|{f}"] = " ".join(o.choices)
                elif o.takes_value and _kind(o.metavar):
                    kind = _kind(o.metavar)
                    # run --network also takes docker's modes (bridge, host, none)
                    valkinds[f"{key}|{f}"] = ("netmode" if kind == "network" and
                                              c.path[-1:] in (("run",), ("create",)) else kind)
    return {"subs": subs, "opts": opts, "valopts": valopts, "args": args,
            "choices": choices, "valkinds": valkinds}


def _bash_assoc(name: str, d: dict) -> str:
    body = "\n".join(f"  [{_q(k)}]={_q(v)}" for k, v in d.items())
    return f"_pyrt_{name}=(\n{body}\n)"


BASH_FUNCTIONS = r'''
_pyrt_has() { local w; for w in $2; do [ "$w" = "$1" ] && return 0; done; return 1; }

_pyrt_names() {  # $1: kind; the rest: the line's store options
  local kind=$1; shift
  case $kind in
    container) pyrt "$@" ps -a --format '{{.Names}}' 2>/dev/null ;;
    image) pyrt "$@" images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null | grep -v '<none>' ;;
    volume) pyrt "$@" volume ls -q 2>/dev/null ;;
    network) pyrt "$@" network ls --format '{{.Name}}' 2>/dev/null ;;
    netmode) printf '%s\n' bridge host none; pyrt "$@" network ls --format '{{.Name}}' 2>/dev/null ;;
  esac
}

_pyrt() {
  [ -n "${ZSH_VERSION:-}" ] && setopt localoptions ksharrays shwordsplit
  local cur="${COMP_WORDS[COMP_CWORD]}" prev="" path=pyrt i=1 w npos=0 spec kind
  local -a store
  [ "$COMP_CWORD" -gt 0 ] && prev="${COMP_WORDS[COMP_CWORD-1]}"
  COMPREPLY=()
  while [ "$i" -lt "$COMP_CWORD" ]; do
    w="${COMP_WORDS[i]}"
    if [[ $w == -* ]]; then
      if [[ $w != *=* ]] && _pyrt_has "$w" "${_pyrt_valopts[$path]}"; then
        _pyrt_has "$w" "${_pyrt_store_opts}" && store+=("$w" "${COMP_WORDS[i+1]}")
        i=$((i+1))
      fi
    elif [ "$npos" -eq 0 ] && _pyrt_has "$w" "${_pyrt_subs[$path]}"; then
      path="$path $w"
    else
      npos=$((npos+1))
    fi
    i=$((i+1))
  done
  spec=(${_pyrt_args[$path]})
  # once the positionals before the container's command are given, the rest of the line
  # is the command's (docker's rule: pyrt's options come before the image)
  [ "${#spec[@]}" -gt 0 ] && [[ ${spec[${#spec[@]}-1]} == *! ]] && \
    [ "$npos" -ge "$((${#spec[@]}-1))" ] && return 0
  if [[ $prev == -* ]] && _pyrt_has "$prev" "${_pyrt_valopts[$path]}"; then
    if [ -n "${_pyrt_choices[$path|$prev]}" ]; then
      COMPREPLY=($(compgen -W "${_pyrt_choices[$path|$prev]}" -- "$cur"))
    elif [ -n "${_pyrt_valkinds[$path|$prev]}" ]; then
      COMPREPLY=($(compgen -W "$(_pyrt_names "${_pyrt_valkinds[$path|$prev]}" "${store[@]}")" -- "$cur"))
    fi
    return 0   # an empty reply: the shell's default (file names)
  fi
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "${_pyrt_opts[$path]}" -- "$cur"))
    return 0
  fi
  if [ "$npos" -eq 0 ] && [ -n "${_pyrt_subs[$path]}" ]; then
    COMPREPLY=($(compgen -W "${_pyrt_subs[$path]}" -- "$cur"))
    return 0
  fi
  spec=(${_pyrt_args[$path]})
  [ "${#spec[@]}" -eq 0 ] && return 0
  if [ "$npos" -lt "${#spec[@]}" ]; then kind=${spec[npos]}; else kind=${spec[${#spec[@]}-1]}
    [[ $kind == *+ ]] || return 0; fi
  kind=${kind%[+!]}
  [ "$kind" = - ] && return 0
  if [[ $kind == c:* ]]; then kind=${kind#c:}; COMPREPLY=($(compgen -W "${kind//,/ }" -- "$cur")); return 0; fi
  COMPREPLY=($(compgen -W "$(_pyrt_names "$kind" "${store[@]}")" -- "$cur"))
}
complete -o default -F _pyrt pyrt
'''


def bash_script(cmds) -> str:
    data = _data(cmds)
    head = ["# pyrt completion for bash (generated by `pyrt completion bash` from pyrt's parser)",
            "declare -gA _pyrt_subs _pyrt_opts _pyrt_valopts _pyrt_args _pyrt_choices _pyrt_valkinds",
            f"_pyrt_store_opts={_q(' '.join(STORE_OPTIONS))}"]
    for name in ("subs", "opts", "valopts", "args", "choices", "valkinds"):
        head.append(_bash_assoc(name, data[name]))
    return "\n".join(head) + "\n" + BASH_FUNCTIONS


def zsh_script(cmds) -> str:
    return ("#compdef pyrt\n"
            "# pyrt completion for zsh (generated by `pyrt completion zsh` from pyrt's parser):\n"
            "# the bash completion's data and function, run through zsh's bashcompinit\n"
            "autoload -U +X compinit && { (( $+functions[compdef] )) || compinit; }\n"
            "autoload -U +X bashcompinit && bashcompinit\n"
            + bash_script(cmds).split("\n", 1)[1])


FISH_FUNCTIONS = r'''
function __pyrt_has; contains -- $argv[1] (string split ' ' -- $argv[2]); end

function __pyrt_names  # kind, then the line's store options
    set -l kind $argv[1]
    set -l store $argv[2..-1]
    switch $kind
        case container; pyrt $store ps -a --format '{{.Names}}' 2>/dev/null
        case image; pyrt $store images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null | string match -v '*<none>*'
        case volume; pyrt $store volume ls -q 2>/dev/null
        case network; pyrt $store network ls --format '{{.Name}}' 2>/dev/null
        case netmode; printf '%s\n' bridge host none; pyrt $store network ls --format '{{.Name}}' 2>/dev/null
    end
end

function __pyrt_complete
    set -l words (commandline -opc)
    set -l cur (commandline -ct)
    set -l path pyrt
    set -l npos 0
    set -l store
    set -l i 2
    set -l spec
    while test $i -le (count $words)
        set -l w $words[$i]
        if string match -q -- '-*' $w
            if not string match -q -- '*=*' $w; and __pyrt_has $w (__pyrt_data valopts $path)
                set -l next (math $i + 1)
                if __pyrt_has $w "$__pyrt_store_opts"; and test $next -le (count $words)
                    set store $store $w $words[$next]
                end
                set i $next
            end
        else if test $npos -eq 0; and __pyrt_has $w (__pyrt_data subs $path)
            set path "$path $w"
        else
            set npos (math $npos + 1)
        end
        set i (math $i + 1)
    end
    set spec (string split -n ' ' -- (__pyrt_data args $path))
    # once the positionals before the container's command are given, the rest is its own
    if test (count $spec) -gt 0; and string match -q -- '*!' $spec[-1]; and test $npos -ge (math (count $spec) - 1)
        __fish_complete_path $cur
        return 0
    end
    set -l prev ''
    test (count $words) -ge 2; and set prev $words[-1]
    if string match -q -- '-*' $prev; and __pyrt_has $prev (__pyrt_data valopts $path)
        set -l ch (__pyrt_data choices "$path|$prev")
        set -l vk (__pyrt_data valkinds "$path|$prev")
        if test -n "$ch"
            string split ' ' -- $ch
        else if test -n "$vk"
            __pyrt_names $vk $store
        else
            __fish_complete_path $cur
        end
        return 0
    end
    if string match -q -- '-*' $cur
        string split ' ' -- (__pyrt_data opts $path)
        return 0
    end
    set -l subs (__pyrt_data subs $path)
    if test $npos -eq 0; and test -n "$subs"
        string split ' ' -- $subs
        return 0
    end
    set spec (string split -n ' ' -- (__pyrt_data args $path))
    test (count $spec) -eq 0; and begin; __fish_complete_path $cur; return 0; end
    set -l kind
    if test $npos -lt (count $spec)
        set kind $spec[(math $npos + 1)]
    else
        set kind $spec[-1]
        string match -q -- '*+' $kind; or return 0
    end
    set kind (string replace -r '[+!]$' '' -- $kind)
    if string match -q -- 'c:*' $kind
        string split ',' -- (string sub -s 3 -- $kind)
    else if test "$kind" = -
        __fish_complete_path $cur
    else
        __pyrt_names $kind $store
    end
end

complete -c pyrt -f -a '(__pyrt_complete)'
'''


def fish_script(cmds) -> str:
    data = _data(cmds)
    lines = ["# pyrt completion for fish (generated by `pyrt completion fish` from pyrt's parser)",
             f"set -g __pyrt_store_opts {_q(' '.join(STORE_OPTIONS))}",
             "function __pyrt_data  # table, key", "    switch $argv[1]"]
    for name in ("subs", "opts", "valopts", "args", "choices", "valkinds"):
        lines.append(f"        case {name}")
        lines.append("            switch $argv[2]")
        for k, v in data[name].items():
            if v:
                # fish's case patterns are globs: the keys hold no * ? [ (commands and flags)
                lines.append(f"                case {_q(k)}; echo {_q(v)}")
        lines.append("            end")
    lines += ["    end", "end"]
    return "\n".join(lines) + "\n" + FISH_FUNCTIONS


def script(shell: str) -> str:
    from ..errors import UsageError
    from .cmdtree import tree

    if shell not in SHELLS:
        raise UsageError(f"unknown shell {shell!r}: bash, zsh or fish")
    cmds = tree()
    return {"bash": bash_script, "zsh": zsh_script, "fish": fish_script}[shell](cmds)


def cmd_completion(args) -> int:
    from ..errors import UsageError

    if args.shell == "man":
        if not args.dir:
            raise UsageError("pyrt completion man needs a directory: pyrt completion man DIR")
        from .manpages import write

        n = len(write(args.dir, subdir=False))
        print(f"{n} man pages in {args.dir}")
        return 0
    if args.dir:
        raise UsageError(f"pyrt completion {args.shell} takes no directory (it prints the script)")
    sys.stdout.write(script(args.shell))
    return 0


def _p_completion(cmd) -> None:
    c = cmd("completion", "Print a shell completion script (bash, zsh or fish), or write the man "
            "pages (man DIR), generated from the command line, plugins' commands included",
            cmd_completion)
    c.add_argument("shell", choices=KINDS, metavar="SHELL", help="bash, zsh, fish, or man")
    c.add_argument("dir", nargs="?", metavar="DIR", help="(man) the directory the pages go to")


#: one parser builder per command (cli.main builds only the one it runs)
PARSERS = {"completion": _p_completion}


def add_parsers(cmd) -> None:
    for build in PARSERS.values():
        build(cmd)
