# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_vimg_global_optspecs
    string join \n h/help V/version
end

function __fish_vimg_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_vimg_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_vimg_using_subcommand
    set -l cmd (__fish_vimg_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c vimg -n "__fish_vimg_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vimg -n "__fish_vimg_needs_command" -s V -l version -d 'Print version'
complete -c vimg -n "__fish_vimg_needs_command" -f -a "create" -d 'Create a new, empty disk image'
complete -c vimg -n "__fish_vimg_needs_command" -f -a "info" -d 'Show an image\'s format, virtual and allocated size, and format details'
complete -c vimg -n "__fish_vimg_needs_command" -f -a "convert" -d 'Convert a disk image to another format or subformat'
complete -c vimg -n "__fish_vimg_needs_command" -f -a "map" -d 'Show which ranges of an image hold data, which read as zeros, at which depth of the backing chain, and where in which file they are'
complete -c vimg -n "__fish_vimg_needs_command" -f -a "check" -d 'Check an image and its backing chain for inconsistencies; -r repairs'
complete -c vimg -n "__fish_vimg_needs_command" -f -a "compare" -d 'Compare what two images read, across formats and backing chains'
complete -c vimg -n "__fish_vimg_needs_command" -f -a "amend" -d 'Change in place what can change without moving data'
complete -c vimg -n "__fish_vimg_needs_command" -f -a "measure" -d 'Show the space a conversion into -O FMT needs'
complete -c vimg -n "__fish_vimg_needs_command" -f -a "compact" -d 'Give back the space of grains and blocks that hold only zeros'
complete -c vimg -n "__fish_vimg_needs_command" -f -a "resize" -d 'Change a disk\'s size in place'
complete -c vimg -n "__fish_vimg_needs_command" -f -a "snapshot" -d 'Make and manage delta images (VMware snapshots, differencing VHDs)'
complete -c vimg -n "__fish_vimg_needs_command" -f -a "commit" -d 'Write a delta\'s data into its parent (the same as `snapshot commit`)'
complete -c vimg -n "__fish_vimg_needs_command" -f -a "rebase" -d 'Move a delta onto another parent (the same as `snapshot rebase`)'
complete -c vimg -n "__fish_vimg_needs_command" -f -a "completions" -d 'Print the shell completion script for SHELL'
complete -c vimg -n "__fish_vimg_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vimg -n "__fish_vimg_using_subcommand create" -s f -l format -d 'Image format: vmdk, vhd (or vpc), raw' -r -f -a "raw\t''
vmdk\t''
vhd\t''
vpc\t''"
complete -c vimg -n "__fish_vimg_using_subcommand create" -s o -l options -d 'Format options as key=value[,key=value...]; may be repeated (vmdk: subformat, adapter_type, hwversion, compat6, toolsversion, zeroed_grain, compression_level; vhd: subformat=dynamic|fixed, force_size, block_size, azure; all: size, backing_file, backing_fmt as qemu-img takes them). `-o help` lists them with their values' -r
complete -c vimg -n "__fish_vimg_using_subcommand create" -s t -l cache -l target-cache -d 'When to flush the new image to disk: unsafe (never), writeback, none, writethrough or directsync (before it is moved into place). Without -t, only an image that replaces an existing file is flushed' -r -f -a "unsafe\t'Never flush (fastest; a power cut can lose the new image)'
writeback\t'Flush the new image before it is moved into place'
none\t'As writeback'
writethrough\t'As writeback'
directsync\t'As writeback'"
complete -c vimg -n "__fish_vimg_using_subcommand create" -s b -l backing -d 'Make a delta (snapshot) over this parent image; a relative path is relative to FILE\'s folder, as in qemu-img' -r -F
complete -c vimg -n "__fish_vimg_using_subcommand create" -s F -l backing-format -d 'Format of the parent image (it must match -f)' -r -f -a "raw\t''
vmdk\t''
vhd\t''
vpc\t''"
complete -c vimg -n "__fish_vimg_using_subcommand create" -l object -d 'Not supported: QEMU objects (secrets of encrypted images) have no use for VMDK and VHD, which are not encrypted' -r
complete -c vimg -n "__fish_vimg_using_subcommand create" -l force -d 'Replace the target if it exists'
complete -c vimg -n "__fish_vimg_using_subcommand create" -s q -l quiet -d 'Print nothing on success'
complete -c vimg -n "__fish_vimg_using_subcommand create" -s u -l backing-unsafe -d 'Accepted as qemu-img\'s "do not fail if the parent cannot be read"; but a VMDK delta and a differencing VHD record their parent\'s content ID (CID, UUID), so vimg must read the parent all the same (as qemu-img must for a VMDK)'
complete -c vimg -n "__fish_vimg_using_subcommand create" -l image-opts -d 'Not supported: vimg opens files by name, not QEMU image specifications (qemu-img\'s --image-opts)'
complete -c vimg -n "__fish_vimg_using_subcommand create" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vimg -n "__fish_vimg_using_subcommand create" -s V -l version -d 'Print version'
complete -c vimg -n "__fish_vimg_using_subcommand info" -s f -l format -d 'Image format (probed from the content when not given)' -r -f -a "raw\t''
vmdk\t''
vhd\t''
vpc\t''"
complete -c vimg -n "__fish_vimg_using_subcommand info" -l output -d 'Output style' -r -f -a "human\t''
json\t''"
complete -c vimg -n "__fish_vimg_using_subcommand info" -s T -l cache -d 'Cache mode for reading (qemu-img\'s -T; vimg reads through the page cache whatever it says): none, writeback, writethrough, directsync, unsafe' -r -f -a "unsafe\t'Never flush (fastest; a power cut can lose the new image)'
writeback\t'Flush the new image before it is moved into place'
none\t'As writeback'
writethrough\t'As writeback'
directsync\t'As writeback'"
complete -c vimg -n "__fish_vimg_using_subcommand info" -l confine -d 'Open no file an image names (parents, extents) outside DIR, links resolved (for untrusted images, with -f)' -r -F
complete -c vimg -n "__fish_vimg_using_subcommand info" -l object -d 'Not supported: QEMU objects (secrets of encrypted images) have no use for VMDK and VHD, which are not encrypted' -r
complete -c vimg -n "__fish_vimg_using_subcommand info" -s U -l force-share -d 'Read the image even while another process may be writing it'
complete -c vimg -n "__fish_vimg_using_subcommand info" -l no-backing -d 'Refuse an image that has a parent (a delta or differencing disk)'
complete -c vimg -n "__fish_vimg_using_subcommand info" -l ignore-parent-id -d 'Read through a parent whose ID (VMDK CID, VHD UUID) is not the one its delta recorded, for read-only recovery (`vimg rebase -u` fixes the link)'
complete -c vimg -n "__fish_vimg_using_subcommand info" -l image-opts -d 'Not supported: vimg opens files by name, not QEMU image specifications (qemu-img\'s --image-opts)'
complete -c vimg -n "__fish_vimg_using_subcommand info" -s b -l backing-chain -d 'Show every image of the backing chain, top first'
complete -c vimg -n "__fish_vimg_using_subcommand info" -s q -l quiet -d 'Print nothing: only whether the image opens (the exit code)'
complete -c vimg -n "__fish_vimg_using_subcommand info" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vimg -n "__fish_vimg_using_subcommand info" -s V -l version -d 'Print version'
complete -c vimg -n "__fish_vimg_using_subcommand convert" -s f -l source-format -l format -d 'Source format (probed from the content when not given)' -r -f -a "raw\t''
vmdk\t''
vhd\t''
vpc\t''"
complete -c vimg -n "__fish_vimg_using_subcommand convert" -s O -l target-format -l output-format -d 'Target format: vmdk, vhd (or vpc), raw [default: raw; with -n, the target\'s own]' -r -f -a "raw\t''
vmdk\t''
vhd\t''
vpc\t''"
complete -c vimg -n "__fish_vimg_using_subcommand convert" -s o -l target-options -l options -d 'Target format options as key=value[,key=value...]; may be repeated' -r
complete -c vimg -n "__fish_vimg_using_subcommand convert" -s S -l sparse-size -d 'Zero runs of at least this many bytes (a multiple of 512) are left unallocated in the target; 0 allocates everything' -r
complete -c vimg -n "__fish_vimg_using_subcommand convert" -s T -l source-cache -d 'Cache mode of the source (qemu-img\'s -T): accepted; vimg reads through the page cache' -r -f -a "unsafe\t'Never flush (fastest; a power cut can lose the new image)'
writeback\t'Flush the new image before it is moved into place'
none\t'As writeback'
writethrough\t'As writeback'
directsync\t'As writeback'"
complete -c vimg -n "__fish_vimg_using_subcommand convert" -s B -l backing -d 'Make the target a delta (VMDK snapshot, differencing VHD) over BACKING, holding only what differs from it; a relative path is relative to TARGET\'s folder' -r -F
complete -c vimg -n "__fish_vimg_using_subcommand convert" -s F -l backing-format -d 'Format of BACKING (probed when not given); without -B it has no effect, as in qemu-img' -r -f -a "raw\t''
vmdk\t''
vhd\t''
vpc\t''"
complete -c vimg -n "__fish_vimg_using_subcommand convert" -s r -l rate -d 'Move at most RATE bytes a second (10M, 1G; binary units)' -r
complete -c vimg -n "__fish_vimg_using_subcommand convert" -s m -l parallel -d 'Threads for compressing and decompressing (default: one a core; the reading and writing threads come on top)' -r
complete -c vimg -n "__fish_vimg_using_subcommand convert" -s l -l source-snapshot -d 'Not supported: VMDK and VHD images have no internal snapshots (qemu-img\'s -l)' -r
complete -c vimg -n "__fish_vimg_using_subcommand convert" -l object -d 'Not supported: QEMU objects (secrets of encrypted images) have no use for VMDK and VHD, which are not encrypted' -r
complete -c vimg -n "__fish_vimg_using_subcommand convert" -l confine -d 'Open no file an image names (parents, extents) outside DIR, links resolved (for untrusted images, with -f)' -r -F
complete -c vimg -n "__fish_vimg_using_subcommand convert" -s t -l cache -l target-cache -d 'When to flush the new image to disk: unsafe (never), writeback, none, writethrough or directsync (before it is moved into place). Without -t, only an image that replaces an existing file is flushed' -r -f -a "unsafe\t'Never flush (fastest; a power cut can lose the new image)'
writeback\t'Flush the new image before it is moved into place'
none\t'As writeback'
writethrough\t'As writeback'
directsync\t'As writeback'"
complete -c vimg -n "__fish_vimg_using_subcommand convert" -s p -l progress -d 'Show a progress bar (only when stderr is a terminal)'
complete -c vimg -n "__fish_vimg_using_subcommand convert" -s c -l compress -d 'Compress the target (streamOptimized VMDK, chosen when no subformat is given; an error for targets that cannot be compressed)'
complete -c vimg -n "__fish_vimg_using_subcommand convert" -s U -l force-share -d 'Read the source even while another process may be writing it'
complete -c vimg -n "__fish_vimg_using_subcommand convert" -s n -l no-create -d 'Write into TARGET, which exists (an image of -O\'s format, or a raw file or block device) and is at least the source\'s size, instead of creating it; only what reads differently is written'
complete -c vimg -n "__fish_vimg_using_subcommand convert" -l target-is-zero -d 'With -n: TARGET reads as zeros already, so zeros are not written'
complete -c vimg -n "__fish_vimg_using_subcommand convert" -s W -l oob-writes -d 'qemu-img\'s out-of-order writes: accepted; vimg reads and writes on their own threads already, and writes in order so that the target is laid out front to back'
complete -c vimg -n "__fish_vimg_using_subcommand convert" -s C -l copy-range-offloading -d 'Copy in the kernel (copy_file_range) where the source\'s bytes and the target\'s places lie as they are in files (raw, fixed VHD, flat VMDK); zeros in the source\'s data are then copied as they are'
complete -c vimg -n "__fish_vimg_using_subcommand convert" -l salvage -d 'Go on past read errors: what cannot be read is written as zeros, each such range is reported, and the exit code is 2'
complete -c vimg -n "__fish_vimg_using_subcommand convert" -l source-image-opts -d 'Not supported: vimg takes file names, not QEMU image specifications'
complete -c vimg -n "__fish_vimg_using_subcommand convert" -l target-image-opts -d 'Not supported: vimg takes file names, not QEMU image specifications'
complete -c vimg -n "__fish_vimg_using_subcommand convert" -l bitmaps -d 'Not supported: VMDK and VHD images have no persistent bitmaps'
complete -c vimg -n "__fish_vimg_using_subcommand convert" -l skip-broken-bitmaps -d 'Not supported: VMDK and VHD images have no persistent bitmaps'
complete -c vimg -n "__fish_vimg_using_subcommand convert" -l image-opts -d 'Not supported: vimg opens files by name, not QEMU image specifications (qemu-img\'s --image-opts)'
complete -c vimg -n "__fish_vimg_using_subcommand convert" -l no-backing -d 'Refuse an image that has a parent (a delta or differencing disk)'
complete -c vimg -n "__fish_vimg_using_subcommand convert" -l ignore-parent-id -d 'Read through a parent whose ID (VMDK CID, VHD UUID) is not the one its delta recorded, for read-only recovery (`vimg rebase -u` fixes the link)'
complete -c vimg -n "__fish_vimg_using_subcommand convert" -l force -d 'Replace the target if it exists'
complete -c vimg -n "__fish_vimg_using_subcommand convert" -s q -l quiet -d 'Print nothing on success'
complete -c vimg -n "__fish_vimg_using_subcommand convert" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vimg -n "__fish_vimg_using_subcommand convert" -s V -l version -d 'Print version'
complete -c vimg -n "__fish_vimg_using_subcommand map" -s f -l format -d 'Image format (probed from the content when not given)' -r -f -a "raw\t''
vmdk\t''
vhd\t''
vpc\t''"
complete -c vimg -n "__fish_vimg_using_subcommand map" -l output -d 'Output style' -r -f -a "human\t''
json\t''"
complete -c vimg -n "__fish_vimg_using_subcommand map" -s T -l cache -d 'Cache mode for reading (qemu-img\'s -T; vimg reads through the page cache whatever it says): none, writeback, writethrough, directsync, unsafe' -r -f -a "unsafe\t'Never flush (fastest; a power cut can lose the new image)'
writeback\t'Flush the new image before it is moved into place'
none\t'As writeback'
writethrough\t'As writeback'
directsync\t'As writeback'"
complete -c vimg -n "__fish_vimg_using_subcommand map" -l confine -d 'Open no file an image names (parents, extents) outside DIR, links resolved (for untrusted images, with -f)' -r -F
complete -c vimg -n "__fish_vimg_using_subcommand map" -l object -d 'Not supported: QEMU objects (secrets of encrypted images) have no use for VMDK and VHD, which are not encrypted' -r
complete -c vimg -n "__fish_vimg_using_subcommand map" -l start-offset -d 'Start mapping at this byte offset' -r
complete -c vimg -n "__fish_vimg_using_subcommand map" -l max-length -d 'Map at most this many bytes' -r
complete -c vimg -n "__fish_vimg_using_subcommand map" -s U -l force-share -d 'Read the image even while another process may be writing it'
complete -c vimg -n "__fish_vimg_using_subcommand map" -l no-backing -d 'Refuse an image that has a parent (a delta or differencing disk)'
complete -c vimg -n "__fish_vimg_using_subcommand map" -l ignore-parent-id -d 'Read through a parent whose ID (VMDK CID, VHD UUID) is not the one its delta recorded, for read-only recovery (`vimg rebase -u` fixes the link)'
complete -c vimg -n "__fish_vimg_using_subcommand map" -l image-opts -d 'Not supported: vimg opens files by name, not QEMU image specifications (qemu-img\'s --image-opts)'
complete -c vimg -n "__fish_vimg_using_subcommand map" -s q -l quiet -d 'Print nothing: only whether the image\'s tables can be walked (the exit code)'
complete -c vimg -n "__fish_vimg_using_subcommand map" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vimg -n "__fish_vimg_using_subcommand map" -s V -l version -d 'Print version'
complete -c vimg -n "__fish_vimg_using_subcommand check" -s f -l format -d 'Image format (probed from the content when not given)' -r -f -a "raw\t''
vmdk\t''
vhd\t''
vpc\t''"
complete -c vimg -n "__fish_vimg_using_subcommand check" -l output -d 'Output style' -r -f -a "human\t''
json\t''"
complete -c vimg -n "__fish_vimg_using_subcommand check" -s T -l cache -d 'Cache mode for reading (qemu-img\'s -T; vimg reads through the page cache whatever it says): none, writeback, writethrough, directsync, unsafe' -r -f -a "unsafe\t'Never flush (fastest; a power cut can lose the new image)'
writeback\t'Flush the new image before it is moved into place'
none\t'As writeback'
writethrough\t'As writeback'
directsync\t'As writeback'"
complete -c vimg -n "__fish_vimg_using_subcommand check" -l confine -d 'Open no file an image names (parents, extents) outside DIR, links resolved (for untrusted images, with -f)' -r -F
complete -c vimg -n "__fish_vimg_using_subcommand check" -l object -d 'Not supported: QEMU objects (secrets of encrypted images) have no use for VMDK and VHD, which are not encrypted' -r
complete -c vimg -n "__fish_vimg_using_subcommand check" -s r -l repair -d 'Repair: leaks (free space nothing references, rewrite a footer copy) or all (also rebuild or clear wrong metadata)' -r -f -a "leaks\t''
all\t''"
complete -c vimg -n "__fish_vimg_using_subcommand check" -s U -l force-share -d 'Read the image even while another process may be writing it'
complete -c vimg -n "__fish_vimg_using_subcommand check" -l no-backing -d 'Refuse an image that has a parent (a delta or differencing disk)'
complete -c vimg -n "__fish_vimg_using_subcommand check" -l ignore-parent-id -d 'Read through a parent whose ID (VMDK CID, VHD UUID) is not the one its delta recorded, for read-only recovery (`vimg rebase -u` fixes the link)'
complete -c vimg -n "__fish_vimg_using_subcommand check" -l image-opts -d 'Not supported: vimg opens files by name, not QEMU image specifications (qemu-img\'s --image-opts)'
complete -c vimg -n "__fish_vimg_using_subcommand check" -l no-chain -d 'Check this image only, not the images of its backing chain'
complete -c vimg -n "__fish_vimg_using_subcommand check" -s q -l quiet -d 'Print only the findings, not the summary'
complete -c vimg -n "__fish_vimg_using_subcommand check" -s p -l progress -d 'Show a progress bar, a step for each image of the chain (only when stderr is a terminal)'
complete -c vimg -n "__fish_vimg_using_subcommand check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vimg -n "__fish_vimg_using_subcommand check" -s V -l version -d 'Print version'
complete -c vimg -n "__fish_vimg_using_subcommand compare" -s f -l a-format -d 'Format of the first image (probed when not given)' -r -f -a "raw\t''
vmdk\t''
vhd\t''
vpc\t''"
complete -c vimg -n "__fish_vimg_using_subcommand compare" -s F -l b-format -d 'Format of the second image (probed when not given)' -r -f -a "raw\t''
vmdk\t''
vhd\t''
vpc\t''"
complete -c vimg -n "__fish_vimg_using_subcommand compare" -s T -l cache -d 'Cache mode for reading (qemu-img\'s -T): accepted; vimg reads through the page cache' -r -f -a "unsafe\t'Never flush (fastest; a power cut can lose the new image)'
writeback\t'Flush the new image before it is moved into place'
none\t'As writeback'
writethrough\t'As writeback'
directsync\t'As writeback'"
complete -c vimg -n "__fish_vimg_using_subcommand compare" -l object -d 'Not supported: QEMU objects (secrets of encrypted images) have no use for VMDK and VHD, which are not encrypted' -r
complete -c vimg -n "__fish_vimg_using_subcommand compare" -l image-opts -d 'Not supported: vimg opens files by name, not QEMU image specifications (qemu-img\'s --image-opts)'
complete -c vimg -n "__fish_vimg_using_subcommand compare" -s s -l strict -d 'Strict: images of different sizes, or that allocate differently, differ'
complete -c vimg -n "__fish_vimg_using_subcommand compare" -s p -l progress -d 'Show a progress bar (only when stderr is a terminal)'
complete -c vimg -n "__fish_vimg_using_subcommand compare" -s q -l quiet -d 'Print nothing (the exit code says)'
complete -c vimg -n "__fish_vimg_using_subcommand compare" -s U -l force-share -d 'Read the images even while another process may be writing them'
complete -c vimg -n "__fish_vimg_using_subcommand compare" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vimg -n "__fish_vimg_using_subcommand compare" -s V -l version -d 'Print version'
complete -c vimg -n "__fish_vimg_using_subcommand amend" -s f -l format -d 'Image format (probed from the content when not given)' -r -f -a "raw\t''
vmdk\t''
vhd\t''
vpc\t''"
complete -c vimg -n "__fish_vimg_using_subcommand amend" -s o -l options -d 'What to change, as key=value[,key=value...]' -r
complete -c vimg -n "__fish_vimg_using_subcommand amend" -s t -l cache -d 'Cache mode (qemu-img\'s -t): accepted for scripts; the amend is written and flushed whatever it says' -r -f -a "unsafe\t'Never flush (fastest; a power cut can lose the new image)'
writeback\t'Flush the new image before it is moved into place'
none\t'As writeback'
writethrough\t'As writeback'
directsync\t'As writeback'"
complete -c vimg -n "__fish_vimg_using_subcommand amend" -l object -d 'Not supported: QEMU objects (secrets of encrypted images) have no use for VMDK and VHD, which are not encrypted' -r
complete -c vimg -n "__fish_vimg_using_subcommand amend" -s q -l quiet -d 'Print nothing on success'
complete -c vimg -n "__fish_vimg_using_subcommand amend" -s p -l progress -d 'Accepted for scripts: an amend is one write, too quick for a bar'
complete -c vimg -n "__fish_vimg_using_subcommand amend" -l force -d 'qemu-img\'s "allow unsafe operations": vimg amends only what keeps every reader seeing the same disk, with or without it'
complete -c vimg -n "__fish_vimg_using_subcommand amend" -l image-opts -d 'Not supported: vimg opens files by name, not QEMU image specifications (qemu-img\'s --image-opts)'
complete -c vimg -n "__fish_vimg_using_subcommand amend" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vimg -n "__fish_vimg_using_subcommand amend" -s V -l version -d 'Print version'
complete -c vimg -n "__fish_vimg_using_subcommand measure" -s f -l format -d 'Format of SOURCE (probed when not given)' -r -f -a "raw\t''
vmdk\t''
vhd\t''
vpc\t''"
complete -c vimg -n "__fish_vimg_using_subcommand measure" -s O -l target-format -d 'Output format' -r -f -a "raw\t''
vmdk\t''
vhd\t''
vpc\t''"
complete -c vimg -n "__fish_vimg_using_subcommand measure" -s o -l options -d 'Options of the output format as key=value[,key=value...]' -r
complete -c vimg -n "__fish_vimg_using_subcommand measure" -s s -l size -d 'Measure an empty disk of this size instead of SOURCE' -r
complete -c vimg -n "__fish_vimg_using_subcommand measure" -s l -l snapshot -d 'Not supported: VMDK and VHD images have no internal snapshots to measure (qemu-img\'s -l)' -r
complete -c vimg -n "__fish_vimg_using_subcommand measure" -l object -d 'Not supported: QEMU objects (secrets of encrypted images) have no use for VMDK and VHD, which are not encrypted' -r
complete -c vimg -n "__fish_vimg_using_subcommand measure" -l output -d 'Output style' -r -f -a "human\t''
json\t''"
complete -c vimg -n "__fish_vimg_using_subcommand measure" -s q -l quiet -d 'Print nothing: only whether it can be measured (the exit code)'
complete -c vimg -n "__fish_vimg_using_subcommand measure" -l image-opts -d 'Not supported: vimg opens files by name, not QEMU image specifications (qemu-img\'s --image-opts)'
complete -c vimg -n "__fish_vimg_using_subcommand measure" -s U -l force-share -d 'Read SOURCE even while another process may be writing it'
complete -c vimg -n "__fish_vimg_using_subcommand measure" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vimg -n "__fish_vimg_using_subcommand measure" -s V -l version -d 'Print version'
complete -c vimg -n "__fish_vimg_using_subcommand compact" -s f -l format -d 'Image format (probed from the content when not given)' -r -f -a "raw\t''
vmdk\t''
vhd\t''
vpc\t''"
complete -c vimg -n "__fish_vimg_using_subcommand compact" -s q -l quiet -d 'Print nothing on success'
complete -c vimg -n "__fish_vimg_using_subcommand compact" -s p -l progress -d 'Show a progress bar (only when stderr is a terminal)'
complete -c vimg -n "__fish_vimg_using_subcommand compact" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vimg -n "__fish_vimg_using_subcommand compact" -s V -l version -d 'Print version'
complete -c vimg -n "__fish_vimg_using_subcommand resize" -s f -l format -d 'Image format (probed from the content when not given)' -r -f -a "raw\t''
vmdk\t''
vhd\t''
vpc\t''"
complete -c vimg -n "__fish_vimg_using_subcommand resize" -l preallocation -d 'How the new space is allocated: off (sparse), metadata (only the tables; what vimg does anyway), falloc (reserved in the file system), full (written with zeros). falloc and full need a disk whose bytes lie in its files as they are (raw, fixed VHD, flat VMDK); a sparse VMDK or dynamic VHD allocates as it is written' -r -f -a "off\t''
metadata\t''
falloc\t''
full\t''"
complete -c vimg -n "__fish_vimg_using_subcommand resize" -l object -d 'Not supported: QEMU objects (secrets of encrypted images) have no use for VMDK and VHD, which are not encrypted' -r
complete -c vimg -n "__fish_vimg_using_subcommand resize" -l shrink -d 'Allow the disk to become smaller'
complete -c vimg -n "__fish_vimg_using_subcommand resize" -l discard-data -d 'With --shrink: drop what is stored past the new end'
complete -c vimg -n "__fish_vimg_using_subcommand resize" -s q -l quiet -d 'Print nothing on success'
complete -c vimg -n "__fish_vimg_using_subcommand resize" -s p -l progress -d 'Show a progress bar while the part past a smaller size is read (only when stderr is a terminal)'
complete -c vimg -n "__fish_vimg_using_subcommand resize" -l image-opts -d 'Not supported: vimg opens files by name, not QEMU image specifications (qemu-img\'s --image-opts)'
complete -c vimg -n "__fish_vimg_using_subcommand resize" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vimg -n "__fish_vimg_using_subcommand resize" -s V -l version -d 'Print version'
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and not __fish_seen_subcommand_from create commit list rebase help" -s c -l create -d 'Not supported: make an internal snapshot (use `vimg snapshot create`)' -r
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and not __fish_seen_subcommand_from create commit list rebase help" -s a -l apply -d 'Not supported: go back to an internal snapshot' -r
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and not __fish_seen_subcommand_from create commit list rebase help" -s d -l delete -d 'Not supported: delete an internal snapshot' -r
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and not __fish_seen_subcommand_from create commit list rebase help" -s f -l format -d 'Image format (probed from the content when not given)' -r -f -a "raw\t''
vmdk\t''
vhd\t''
vpc\t''"
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and not __fish_seen_subcommand_from create commit list rebase help" -l object -d 'Not supported: QEMU objects (secrets of encrypted images) have no use for VMDK and VHD, which are not encrypted' -r
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and not __fish_seen_subcommand_from create commit list rebase help" -s l -l list -d 'List the internal snapshots of FILE (VMDK and VHD have none: the list is empty); the default'
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and not __fish_seen_subcommand_from create commit list rebase help" -s U -l force-share -d 'Read the image even while another process may be writing it'
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and not __fish_seen_subcommand_from create commit list rebase help" -s q -l quiet -d 'Print nothing'
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and not __fish_seen_subcommand_from create commit list rebase help" -l image-opts -d 'Not supported: vimg opens files by name, not QEMU image specifications (qemu-img\'s --image-opts)'
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and not __fish_seen_subcommand_from create commit list rebase help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and not __fish_seen_subcommand_from create commit list rebase help" -s V -l version -d 'Print version'
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and not __fish_seen_subcommand_from create commit list rebase help" -a "create" -d 'Make a new, empty delta over BASE (a VMware snapshot, a differencing VHD)'
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and not __fish_seen_subcommand_from create commit list rebase help" -a "commit" -d 'Write a delta\'s data into its parent, then empty and relink the delta'
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and not __fish_seen_subcommand_from create commit list rebase help" -a "list" -d 'Show a delta\'s chain down to its base, and whether each link holds'
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and not __fish_seen_subcommand_from create commit list rebase help" -a "rebase" -d 'Give a delta another parent (or none), keeping what it reads'
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and not __fish_seen_subcommand_from create commit list rebase help" -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from create" -s o -d 'Options of the delta\'s format as key=value[,key=value...]; `-o help` lists them' -r
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from create" -s t -l cache -l target-cache -d 'When to flush the new image to disk: unsafe (never), writeback, none, writethrough or directsync (before it is moved into place). Without -t, only an image that replaces an existing file is flushed' -r -f -a "unsafe\t'Never flush (fastest; a power cut can lose the new image)'
writeback\t'Flush the new image before it is moved into place'
none\t'As writeback'
writethrough\t'As writeback'
directsync\t'As writeback'"
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from create" -l force -d 'Replace the target if it exists'
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from create" -s q -l quiet -d 'Print nothing on success'
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from create" -s V -l version -d 'Print version'
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from commit" -s f -l format -d 'Format of DELTA (probed from the content when not given)' -r -f -a "raw\t''
vmdk\t''
vhd\t''
vpc\t''"
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from commit" -s b -l base -d 'Commit into BASE, further down DELTA\'s chain, instead of its parent: DELTA is then relinked to BASE, and the layers between no longer read what they did (delete them)' -r -F
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from commit" -s t -l cache -d 'Cache mode (qemu-img\'s -t): accepted for scripts; vimg\'s in-place writes keep their crash-safe order whatever it says' -r -f -a "unsafe\t'Never flush (fastest; a power cut can lose the new image)'
writeback\t'Flush the new image before it is moved into place'
none\t'As writeback'
writethrough\t'As writeback'
directsync\t'As writeback'"
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from commit" -s r -l rate -d 'Move at most RATE bytes a second (10M, 1G; binary units), so that the commit does not starve a busy host' -r
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from commit" -l object -d 'Not supported: QEMU objects (secrets of encrypted images) have no use for VMDK and VHD, which are not encrypted' -r
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from commit" -s d -l drop -d 'Keep DELTA\'s data (do not empty it)'
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from commit" -l image-opts -d 'Not supported: vimg opens files by name, not QEMU image specifications (qemu-img\'s --image-opts)'
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from commit" -l force -d 'Commit even though other deltas of the parent (which the commit invalidates) lie beside it'
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from commit" -s p -l progress -d 'Show a progress bar (only when stderr is a terminal)'
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from commit" -s q -l quiet -d 'Print nothing on success'
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from commit" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from commit" -s V -l version -d 'Print version'
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from list" -s f -l format -d 'Image format (probed from the content when not given)' -r -f -a "raw\t''
vmdk\t''
vhd\t''
vpc\t''"
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from list" -l output -d 'Output style' -r -f -a "human\t''
json\t''"
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from list" -l confine -d 'Open no file an image names (parents, extents) outside DIR, links resolved (for untrusted images, with -f)' -r -F
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from list" -s U -l force-share -d 'Read the images even while another process may be writing them'
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print nothing: the exit code says whether every link is valid'
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from list" -l no-backing -d 'Refuse an image that has a parent (a delta or differencing disk)'
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from list" -l ignore-parent-id -d 'Read through a parent whose ID (VMDK CID, VHD UUID) is not the one its delta recorded, for read-only recovery (`vimg rebase -u` fixes the link)'
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from rebase" -s f -l format -d 'Format of DELTA (probed from the content when not given)' -r -f -a "raw\t''
vmdk\t''
vhd\t''
vpc\t''"
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from rebase" -s b -l backing -d 'The new parent ("" for none); a relative path is relative to DELTA\'s folder, as in qemu-img' -r
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from rebase" -s F -l backing-format -d 'Format of NEWBASE (probed when not given)' -r -f -a "raw\t''
vmdk\t''
vhd\t''
vpc\t''"
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from rebase" -s t -l cache -d 'Cache mode of DELTA (qemu-img\'s -t): accepted for scripts; vimg\'s in-place writes keep their crash-safe order whatever it says' -r -f -a "unsafe\t'Never flush (fastest; a power cut can lose the new image)'
writeback\t'Flush the new image before it is moved into place'
none\t'As writeback'
writethrough\t'As writeback'
directsync\t'As writeback'"
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from rebase" -s T -l backing-cache -d 'Cache mode of the parents (qemu-img\'s -T): accepted; vimg reads through the page cache' -r -f -a "unsafe\t'Never flush (fastest; a power cut can lose the new image)'
writeback\t'Flush the new image before it is moved into place'
none\t'As writeback'
writethrough\t'As writeback'
directsync\t'As writeback'"
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from rebase" -l object -d 'Not supported: QEMU objects (secrets of encrypted images) have no use for VMDK and VHD, which are not encrypted' -r
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from rebase" -s u -l backing-unsafe -d 'Unsafe: rewrite the link only, copying nothing (the old parent need not be there)'
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from rebase" -s U -l force-share -d 'Read the old and new parents even while another process may be writing them'
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from rebase" -s c -l compress -d 'Not supported: VMDK deltas and differencing VHDs hold no compressed data (as qemu-img says for them)'
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from rebase" -l image-opts -d 'Not supported: vimg opens files by name, not QEMU image specifications (qemu-img\'s --image-opts)'
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from rebase" -s p -l progress -d 'Show a progress bar (only when stderr is a terminal)'
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from rebase" -s q -l quiet -d 'Print nothing on success'
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from rebase" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from rebase" -s V -l version -d 'Print version'
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from help" -f -a "create" -d 'Make a new, empty delta over BASE (a VMware snapshot, a differencing VHD)'
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from help" -f -a "commit" -d 'Write a delta\'s data into its parent, then empty and relink the delta'
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from help" -f -a "list" -d 'Show a delta\'s chain down to its base, and whether each link holds'
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from help" -f -a "rebase" -d 'Give a delta another parent (or none), keeping what it reads'
complete -c vimg -n "__fish_vimg_using_subcommand snapshot; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vimg -n "__fish_vimg_using_subcommand commit" -s f -l format -d 'Format of DELTA (probed from the content when not given)' -r -f -a "raw\t''
vmdk\t''
vhd\t''
vpc\t''"
complete -c vimg -n "__fish_vimg_using_subcommand commit" -s b -l base -d 'Commit into BASE, further down DELTA\'s chain, instead of its parent: DELTA is then relinked to BASE, and the layers between no longer read what they did (delete them)' -r -F
complete -c vimg -n "__fish_vimg_using_subcommand commit" -s t -l cache -d 'Cache mode (qemu-img\'s -t): accepted for scripts; vimg\'s in-place writes keep their crash-safe order whatever it says' -r -f -a "unsafe\t'Never flush (fastest; a power cut can lose the new image)'
writeback\t'Flush the new image before it is moved into place'
none\t'As writeback'
writethrough\t'As writeback'
directsync\t'As writeback'"
complete -c vimg -n "__fish_vimg_using_subcommand commit" -s r -l rate -d 'Move at most RATE bytes a second (10M, 1G; binary units), so that the commit does not starve a busy host' -r
complete -c vimg -n "__fish_vimg_using_subcommand commit" -l object -d 'Not supported: QEMU objects (secrets of encrypted images) have no use for VMDK and VHD, which are not encrypted' -r
complete -c vimg -n "__fish_vimg_using_subcommand commit" -s d -l drop -d 'Keep DELTA\'s data (do not empty it)'
complete -c vimg -n "__fish_vimg_using_subcommand commit" -l image-opts -d 'Not supported: vimg opens files by name, not QEMU image specifications (qemu-img\'s --image-opts)'
complete -c vimg -n "__fish_vimg_using_subcommand commit" -l force -d 'Commit even though other deltas of the parent (which the commit invalidates) lie beside it'
complete -c vimg -n "__fish_vimg_using_subcommand commit" -s p -l progress -d 'Show a progress bar (only when stderr is a terminal)'
complete -c vimg -n "__fish_vimg_using_subcommand commit" -s q -l quiet -d 'Print nothing on success'
complete -c vimg -n "__fish_vimg_using_subcommand commit" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vimg -n "__fish_vimg_using_subcommand commit" -s V -l version -d 'Print version'
complete -c vimg -n "__fish_vimg_using_subcommand rebase" -s f -l format -d 'Format of DELTA (probed from the content when not given)' -r -f -a "raw\t''
vmdk\t''
vhd\t''
vpc\t''"
complete -c vimg -n "__fish_vimg_using_subcommand rebase" -s b -l backing -d 'The new parent ("" for none); a relative path is relative to DELTA\'s folder, as in qemu-img' -r
complete -c vimg -n "__fish_vimg_using_subcommand rebase" -s F -l backing-format -d 'Format of NEWBASE (probed when not given)' -r -f -a "raw\t''
vmdk\t''
vhd\t''
vpc\t''"
complete -c vimg -n "__fish_vimg_using_subcommand rebase" -s t -l cache -d 'Cache mode of DELTA (qemu-img\'s -t): accepted for scripts; vimg\'s in-place writes keep their crash-safe order whatever it says' -r -f -a "unsafe\t'Never flush (fastest; a power cut can lose the new image)'
writeback\t'Flush the new image before it is moved into place'
none\t'As writeback'
writethrough\t'As writeback'
directsync\t'As writeback'"
complete -c vimg -n "__fish_vimg_using_subcommand rebase" -s T -l backing-cache -d 'Cache mode of the parents (qemu-img\'s -T): accepted; vimg reads through the page cache' -r -f -a "unsafe\t'Never flush (fastest; a power cut can lose the new image)'
writeback\t'Flush the new image before it is moved into place'
none\t'As writeback'
writethrough\t'As writeback'
directsync\t'As writeback'"
complete -c vimg -n "__fish_vimg_using_subcommand rebase" -l object -d 'Not supported: QEMU objects (secrets of encrypted images) have no use for VMDK and VHD, which are not encrypted' -r
complete -c vimg -n "__fish_vimg_using_subcommand rebase" -s u -l backing-unsafe -d 'Unsafe: rewrite the link only, copying nothing (the old parent need not be there)'
complete -c vimg -n "__fish_vimg_using_subcommand rebase" -s U -l force-share -d 'Read the old and new parents even while another process may be writing them'
complete -c vimg -n "__fish_vimg_using_subcommand rebase" -s c -l compress -d 'Not supported: VMDK deltas and differencing VHDs hold no compressed data (as qemu-img says for them)'
complete -c vimg -n "__fish_vimg_using_subcommand rebase" -l image-opts -d 'Not supported: vimg opens files by name, not QEMU image specifications (qemu-img\'s --image-opts)'
complete -c vimg -n "__fish_vimg_using_subcommand rebase" -s p -l progress -d 'Show a progress bar (only when stderr is a terminal)'
complete -c vimg -n "__fish_vimg_using_subcommand rebase" -s q -l quiet -d 'Print nothing on success'
complete -c vimg -n "__fish_vimg_using_subcommand rebase" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vimg -n "__fish_vimg_using_subcommand rebase" -s V -l version -d 'Print version'
complete -c vimg -n "__fish_vimg_using_subcommand completions" -s q -l quiet -d 'Print nothing (only whether SHELL is known: the exit code)'
complete -c vimg -n "__fish_vimg_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vimg -n "__fish_vimg_using_subcommand completions" -s V -l version -d 'Print version'
complete -c vimg -n "__fish_vimg_using_subcommand help; and not __fish_seen_subcommand_from create info convert map check compare amend measure compact resize snapshot commit rebase completions help" -f -a "create" -d 'Create a new, empty disk image'
complete -c vimg -n "__fish_vimg_using_subcommand help; and not __fish_seen_subcommand_from create info convert map check compare amend measure compact resize snapshot commit rebase completions help" -f -a "info" -d 'Show an image\'s format, virtual and allocated size, and format details'
complete -c vimg -n "__fish_vimg_using_subcommand help; and not __fish_seen_subcommand_from create info convert map check compare amend measure compact resize snapshot commit rebase completions help" -f -a "convert" -d 'Convert a disk image to another format or subformat'
complete -c vimg -n "__fish_vimg_using_subcommand help; and not __fish_seen_subcommand_from create info convert map check compare amend measure compact resize snapshot commit rebase completions help" -f -a "map" -d 'Show which ranges of an image hold data, which read as zeros, at which depth of the backing chain, and where in which file they are'
complete -c vimg -n "__fish_vimg_using_subcommand help; and not __fish_seen_subcommand_from create info convert map check compare amend measure compact resize snapshot commit rebase completions help" -f -a "check" -d 'Check an image and its backing chain for inconsistencies; -r repairs'
complete -c vimg -n "__fish_vimg_using_subcommand help; and not __fish_seen_subcommand_from create info convert map check compare amend measure compact resize snapshot commit rebase completions help" -f -a "compare" -d 'Compare what two images read, across formats and backing chains'
complete -c vimg -n "__fish_vimg_using_subcommand help; and not __fish_seen_subcommand_from create info convert map check compare amend measure compact resize snapshot commit rebase completions help" -f -a "amend" -d 'Change in place what can change without moving data'
complete -c vimg -n "__fish_vimg_using_subcommand help; and not __fish_seen_subcommand_from create info convert map check compare amend measure compact resize snapshot commit rebase completions help" -f -a "measure" -d 'Show the space a conversion into -O FMT needs'
complete -c vimg -n "__fish_vimg_using_subcommand help; and not __fish_seen_subcommand_from create info convert map check compare amend measure compact resize snapshot commit rebase completions help" -f -a "compact" -d 'Give back the space of grains and blocks that hold only zeros'
complete -c vimg -n "__fish_vimg_using_subcommand help; and not __fish_seen_subcommand_from create info convert map check compare amend measure compact resize snapshot commit rebase completions help" -f -a "resize" -d 'Change a disk\'s size in place'
complete -c vimg -n "__fish_vimg_using_subcommand help; and not __fish_seen_subcommand_from create info convert map check compare amend measure compact resize snapshot commit rebase completions help" -f -a "snapshot" -d 'Make and manage delta images (VMware snapshots, differencing VHDs)'
complete -c vimg -n "__fish_vimg_using_subcommand help; and not __fish_seen_subcommand_from create info convert map check compare amend measure compact resize snapshot commit rebase completions help" -f -a "commit" -d 'Write a delta\'s data into its parent (the same as `snapshot commit`)'
complete -c vimg -n "__fish_vimg_using_subcommand help; and not __fish_seen_subcommand_from create info convert map check compare amend measure compact resize snapshot commit rebase completions help" -f -a "rebase" -d 'Move a delta onto another parent (the same as `snapshot rebase`)'
complete -c vimg -n "__fish_vimg_using_subcommand help; and not __fish_seen_subcommand_from create info convert map check compare amend measure compact resize snapshot commit rebase completions help" -f -a "completions" -d 'Print the shell completion script for SHELL'
complete -c vimg -n "__fish_vimg_using_subcommand help; and not __fish_seen_subcommand_from create info convert map check compare amend measure compact resize snapshot commit rebase completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vimg -n "__fish_vimg_using_subcommand help; and __fish_seen_subcommand_from snapshot" -f -a "create" -d 'Make a new, empty delta over BASE (a VMware snapshot, a differencing VHD)'
complete -c vimg -n "__fish_vimg_using_subcommand help; and __fish_seen_subcommand_from snapshot" -f -a "commit" -d 'Write a delta\'s data into its parent, then empty and relink the delta'
complete -c vimg -n "__fish_vimg_using_subcommand help; and __fish_seen_subcommand_from snapshot" -f -a "list" -d 'Show a delta\'s chain down to its base, and whether each link holds'
complete -c vimg -n "__fish_vimg_using_subcommand help; and __fish_seen_subcommand_from snapshot" -f -a "rebase" -d 'Give a delta another parent (or none), keeping what it reads'
