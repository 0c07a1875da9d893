// Copyright 2026 The svcreg Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// completionWords are what each command completes: subcommands, kinds and
// flags. Names of objects come from the registry (svcreg get KIND -o name).
var completionWords = map[string]string{
	"":           "serve get describe apply delete watch drain undrain bench resolve env operator snapshot proxy token cert xds version completion help",
	"get":        "services instances endpoints -n --namespace -A --all-namespaces -l --selector -o --output --addr",
	"describe":   "service instance -n --namespace --addr",
	"watch":      "services instances endpoints -n --namespace -A --all-namespaces -l --selector --addr",
	"apply":      "-f --filename --dry-run --addr",
	"delete":     "service instance -f --filename -n --namespace --ignore-not-found --addr",
	"drain":      "-n --namespace --addr",
	"undrain":    "-n --namespace --addr",
	"operator":   "raft",
	"snapshot":   "save restore",
	"token":      "create list revoke whoami generate",
	"cert":       "ca issue",
	"xds":        "bootstrap clients",
	"completion": "bash zsh fish",
	"-o":         "wide yaml json name",
}

// completionObjects: after these words, the registry's object names.
var completionObjects = map[string]string{
	"services": "services", "service": "services", "svc": "services",
	"instances": "instances", "instance": "instances", "endpoints": "endpoints",
	"drain": "instances", "undrain": "instances",
}

const bashCompletion = `# svcreg bash completion: source <(svcreg completion bash)
_svcreg() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} cmd=${COMP_WORDS[1]} words=""
  if [ "$COMP_CWORD" -eq 1 ]; then words="$(_svcreg_words '')"
  elif [ "$prev" = "-o" ] || [ "$prev" = "--output" ]; then words="$(_svcreg_words -o)"
  elif [ "$prev" = "-f" ] || [ "$prev" = "--filename" ]; then COMPREPLY=($(compgen -f -- "$cur")); return
  else
    local kind; kind="$(_svcreg_kind "$prev")"
    if [ -n "$kind" ] && [ "${cur#-}" = "$cur" ]; then
      words="$(svcreg get "$kind" -o name 2>/dev/null | sed 's|^[^/]*/||')"
    else words="$(_svcreg_words "$cmd")"; fi
  fi
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
_svcreg_words() {
  case "$1" in
%s  esac
}
_svcreg_kind() {
  case "$1" in
%s  esac
}
complete -F _svcreg svcreg
`

const zshCompletion = `#compdef svcreg
# svcreg zsh completion: source <(svcreg completion zsh)
autoload -U +X bashcompinit && bashcompinit
`

const fishCompletion = `# svcreg fish completion: svcreg completion fish | source
function __svcreg_words
    switch $argv[1]
%s    end
end
function __svcreg_kind
    switch $argv[1]
%s    end
end
function __svcreg_complete
    set -l tokens (commandline -opc)
    set -l prev $tokens[-1]
    if test (count $tokens) -eq 1
        __svcreg_words ''
    else if contains -- $prev -o --output
        __svcreg_words -o
    else if set -l kind (__svcreg_kind $prev)
        svcreg get $kind -o name 2>/dev/null | string replace -r '^[^/]*/' ''
    else
        __svcreg_words $tokens[2]
    end
end
complete -c svcreg -f -a '(__svcreg_complete)'
complete -c svcreg -n '__fish_seen_subcommand_from apply delete' -s f -l filename -r -F
`

func completionCmd(args []string, out io.Writer) error {
	if len(args) != 1 {
		return fmt.Errorf("completion takes one shell: bash, zsh or fish")
	}
	words, kinds := caseArms(completionWords, "    %q) echo %q ;;\n"), caseArms(completionObjects, "    %q) echo %q ;;\n")
	switch args[0] {
	case "bash":
		fmt.Fprintf(out, bashCompletion, words, kinds)
	case "zsh":
		fmt.Fprint(out, zshCompletion)
		fmt.Fprintf(out, bashCompletion, words, kinds)
	case "fish":
		fmt.Fprintf(out, fishCompletion, caseArms(completionWords, "        case %q\n            string split ' ' %q\n"),
			caseArms(completionObjects, "        case %q\n            echo %q\n"))
	default:
		return fmt.Errorf("completion: unknown shell %q (bash, zsh or fish)", args[0])
	}
	return nil
}

// caseArms renders a table as shell case arms, in a stable order.
func caseArms(table map[string]string, arm string) string {
	keys := make([]string, 0, len(table))
	for k := range table {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, arm, k, table[k])
	}
	return b.String()
}
