
use builtin;
use str;

set edit:completion:arg-completer[vimg] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'vimg'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'vimg'= {
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand create 'Create a new, empty disk image'
            cand info 'Show an image''s format, virtual and allocated size, and format details'
            cand convert 'Convert a disk image to another format or subformat'
            cand map 'Show which ranges of an image hold data, which read as zeros, at which depth of the backing chain, and where in which file they are'
            cand check 'Check an image and its backing chain for inconsistencies; -r repairs'
            cand compare 'Compare what two images read, across formats and backing chains'
            cand amend 'Change in place what can change without moving data'
            cand measure 'Show the space a conversion into -O FMT needs'
            cand compact 'Give back the space of grains and blocks that hold only zeros'
            cand resize 'Change a disk''s size in place'
            cand snapshot 'Make and manage delta images (VMware snapshots, differencing VHDs)'
            cand commit 'Write a delta''s data into its parent (the same as `snapshot commit`)'
            cand rebase 'Move a delta onto another parent (the same as `snapshot rebase`)'
            cand completions 'Print the shell completion script for SHELL'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'vimg;create'= {
            cand -f 'Image format: vmdk, vhd (or vpc), raw'
            cand --format 'Image format: vmdk, vhd (or vpc), raw'
            cand -o 'Format options as key=value[,key=value...]; may be repeated (vmdk: subformat, adapter_type, hwversion, compat6, toolsversion, zeroed_grain, compression_level; vhd: subformat=dynamic|fixed, force_size, block_size, azure; all: size, backing_file, backing_fmt as qemu-img takes them). `-o help` lists them with their values'
            cand --options 'Format options as key=value[,key=value...]; may be repeated (vmdk: subformat, adapter_type, hwversion, compat6, toolsversion, zeroed_grain, compression_level; vhd: subformat=dynamic|fixed, force_size, block_size, azure; all: size, backing_file, backing_fmt as qemu-img takes them). `-o help` lists them with their values'
            cand -t 'When to flush the new image to disk: unsafe (never), writeback, none, writethrough or directsync (before it is moved into place). Without -t, only an image that replaces an existing file is flushed'
            cand --cache 'When to flush the new image to disk: unsafe (never), writeback, none, writethrough or directsync (before it is moved into place). Without -t, only an image that replaces an existing file is flushed'
            cand --target-cache 'When to flush the new image to disk: unsafe (never), writeback, none, writethrough or directsync (before it is moved into place). Without -t, only an image that replaces an existing file is flushed'
            cand -b 'Make a delta (snapshot) over this parent image; a relative path is relative to FILE''s folder, as in qemu-img'
            cand --backing 'Make a delta (snapshot) over this parent image; a relative path is relative to FILE''s folder, as in qemu-img'
            cand -F 'Format of the parent image (it must match -f)'
            cand --backing-format 'Format of the parent image (it must match -f)'
            cand --object 'Not supported: QEMU objects (secrets of encrypted images) have no use for VMDK and VHD, which are not encrypted'
            cand --force 'Replace the target if it exists'
            cand -q 'Print nothing on success'
            cand --quiet 'Print nothing on success'
            cand -u 'Accepted as qemu-img''s "do not fail if the parent cannot be read"; but a VMDK delta and a differencing VHD record their parent''s content ID (CID, UUID), so vimg must read the parent all the same (as qemu-img must for a VMDK)'
            cand --backing-unsafe 'Accepted as qemu-img''s "do not fail if the parent cannot be read"; but a VMDK delta and a differencing VHD record their parent''s content ID (CID, UUID), so vimg must read the parent all the same (as qemu-img must for a VMDK)'
            cand --image-opts 'Not supported: vimg opens files by name, not QEMU image specifications (qemu-img''s --image-opts)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'vimg;info'= {
            cand -f 'Image format (probed from the content when not given)'
            cand --format 'Image format (probed from the content when not given)'
            cand --output 'Output style'
            cand -T 'Cache mode for reading (qemu-img''s -T; vimg reads through the page cache whatever it says): none, writeback, writethrough, directsync, unsafe'
            cand --cache 'Cache mode for reading (qemu-img''s -T; vimg reads through the page cache whatever it says): none, writeback, writethrough, directsync, unsafe'
            cand --confine 'Open no file an image names (parents, extents) outside DIR, links resolved (for untrusted images, with -f)'
            cand --object 'Not supported: QEMU objects (secrets of encrypted images) have no use for VMDK and VHD, which are not encrypted'
            cand -U 'Read the image even while another process may be writing it'
            cand --force-share 'Read the image even while another process may be writing it'
            cand --no-backing 'Refuse an image that has a parent (a delta or differencing disk)'
            cand --ignore-parent-id 'Read through a parent whose ID (VMDK CID, VHD UUID) is not the one its delta recorded, for read-only recovery (`vimg rebase -u` fixes the link)'
            cand --image-opts 'Not supported: vimg opens files by name, not QEMU image specifications (qemu-img''s --image-opts)'
            cand -b 'Show every image of the backing chain, top first'
            cand --backing-chain 'Show every image of the backing chain, top first'
            cand -q 'Print nothing: only whether the image opens (the exit code)'
            cand --quiet 'Print nothing: only whether the image opens (the exit code)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'vimg;convert'= {
            cand -f 'Source format (probed from the content when not given)'
            cand --source-format 'Source format (probed from the content when not given)'
            cand --format 'Source format (probed from the content when not given)'
            cand -O 'Target format: vmdk, vhd (or vpc), raw [default: raw; with -n, the target''s own]'
            cand --target-format 'Target format: vmdk, vhd (or vpc), raw [default: raw; with -n, the target''s own]'
            cand --output-format 'Target format: vmdk, vhd (or vpc), raw [default: raw; with -n, the target''s own]'
            cand -o 'Target format options as key=value[,key=value...]; may be repeated'
            cand --target-options 'Target format options as key=value[,key=value...]; may be repeated'
            cand --options 'Target format options as key=value[,key=value...]; may be repeated'
            cand -S 'Zero runs of at least this many bytes (a multiple of 512) are left unallocated in the target; 0 allocates everything'
            cand --sparse-size 'Zero runs of at least this many bytes (a multiple of 512) are left unallocated in the target; 0 allocates everything'
            cand -T 'Cache mode of the source (qemu-img''s -T): accepted; vimg reads through the page cache'
            cand --source-cache 'Cache mode of the source (qemu-img''s -T): accepted; vimg reads through the page cache'
            cand -B 'Make the target a delta (VMDK snapshot, differencing VHD) over BACKING, holding only what differs from it; a relative path is relative to TARGET''s folder'
            cand --backing 'Make the target a delta (VMDK snapshot, differencing VHD) over BACKING, holding only what differs from it; a relative path is relative to TARGET''s folder'
            cand -F 'Format of BACKING (probed when not given); without -B it has no effect, as in qemu-img'
            cand --backing-format 'Format of BACKING (probed when not given); without -B it has no effect, as in qemu-img'
            cand -r 'Move at most RATE bytes a second (10M, 1G; binary units)'
            cand --rate 'Move at most RATE bytes a second (10M, 1G; binary units)'
            cand -m 'Threads for compressing and decompressing (default: one a core; the reading and writing threads come on top)'
            cand --parallel 'Threads for compressing and decompressing (default: one a core; the reading and writing threads come on top)'
            cand -l 'Not supported: VMDK and VHD images have no internal snapshots (qemu-img''s -l)'
            cand --source-snapshot 'Not supported: VMDK and VHD images have no internal snapshots (qemu-img''s -l)'
            cand --object 'Not supported: QEMU objects (secrets of encrypted images) have no use for VMDK and VHD, which are not encrypted'
            cand --confine 'Open no file an image names (parents, extents) outside DIR, links resolved (for untrusted images, with -f)'
            cand -t 'When to flush the new image to disk: unsafe (never), writeback, none, writethrough or directsync (before it is moved into place). Without -t, only an image that replaces an existing file is flushed'
            cand --cache 'When to flush the new image to disk: unsafe (never), writeback, none, writethrough or directsync (before it is moved into place). Without -t, only an image that replaces an existing file is flushed'
            cand --target-cache 'When to flush the new image to disk: unsafe (never), writeback, none, writethrough or directsync (before it is moved into place). Without -t, only an image that replaces an existing file is flushed'
            cand -p 'Show a progress bar (only when stderr is a terminal)'
            cand --progress 'Show a progress bar (only when stderr is a terminal)'
            cand -c 'Compress the target (streamOptimized VMDK, chosen when no subformat is given; an error for targets that cannot be compressed)'
            cand --compress 'Compress the target (streamOptimized VMDK, chosen when no subformat is given; an error for targets that cannot be compressed)'
            cand -U 'Read the source even while another process may be writing it'
            cand --force-share 'Read the source even while another process may be writing it'
            cand -n 'Write into TARGET, which exists (an image of -O''s format, or a raw file or block device) and is at least the source''s size, instead of creating it; only what reads differently is written'
            cand --no-create 'Write into TARGET, which exists (an image of -O''s format, or a raw file or block device) and is at least the source''s size, instead of creating it; only what reads differently is written'
            cand --target-is-zero 'With -n: TARGET reads as zeros already, so zeros are not written'
            cand -W 'qemu-img''s out-of-order writes: accepted; vimg reads and writes on their own threads already, and writes in order so that the target is laid out front to back'
            cand --oob-writes 'qemu-img''s out-of-order writes: accepted; vimg reads and writes on their own threads already, and writes in order so that the target is laid out front to back'
            cand -C 'Copy in the kernel (copy_file_range) where the source''s bytes and the target''s places lie as they are in files (raw, fixed VHD, flat VMDK); zeros in the source''s data are then copied as they are'
            cand --copy-range-offloading 'Copy in the kernel (copy_file_range) where the source''s bytes and the target''s places lie as they are in files (raw, fixed VHD, flat VMDK); zeros in the source''s data are then copied as they are'
            cand --salvage 'Go on past read errors: what cannot be read is written as zeros, each such range is reported, and the exit code is 2'
            cand --source-image-opts 'Not supported: vimg takes file names, not QEMU image specifications'
            cand --target-image-opts 'Not supported: vimg takes file names, not QEMU image specifications'
            cand --bitmaps 'Not supported: VMDK and VHD images have no persistent bitmaps'
            cand --skip-broken-bitmaps 'Not supported: VMDK and VHD images have no persistent bitmaps'
            cand --image-opts 'Not supported: vimg opens files by name, not QEMU image specifications (qemu-img''s --image-opts)'
            cand --no-backing 'Refuse an image that has a parent (a delta or differencing disk)'
            cand --ignore-parent-id 'Read through a parent whose ID (VMDK CID, VHD UUID) is not the one its delta recorded, for read-only recovery (`vimg rebase -u` fixes the link)'
            cand --force 'Replace the target if it exists'
            cand -q 'Print nothing on success'
            cand --quiet 'Print nothing on success'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'vimg;map'= {
            cand -f 'Image format (probed from the content when not given)'
            cand --format 'Image format (probed from the content when not given)'
            cand --output 'Output style'
            cand -T 'Cache mode for reading (qemu-img''s -T; vimg reads through the page cache whatever it says): none, writeback, writethrough, directsync, unsafe'
            cand --cache 'Cache mode for reading (qemu-img''s -T; vimg reads through the page cache whatever it says): none, writeback, writethrough, directsync, unsafe'
            cand --confine 'Open no file an image names (parents, extents) outside DIR, links resolved (for untrusted images, with -f)'
            cand --object 'Not supported: QEMU objects (secrets of encrypted images) have no use for VMDK and VHD, which are not encrypted'
            cand --start-offset 'Start mapping at this byte offset'
            cand --max-length 'Map at most this many bytes'
            cand -U 'Read the image even while another process may be writing it'
            cand --force-share 'Read the image even while another process may be writing it'
            cand --no-backing 'Refuse an image that has a parent (a delta or differencing disk)'
            cand --ignore-parent-id 'Read through a parent whose ID (VMDK CID, VHD UUID) is not the one its delta recorded, for read-only recovery (`vimg rebase -u` fixes the link)'
            cand --image-opts 'Not supported: vimg opens files by name, not QEMU image specifications (qemu-img''s --image-opts)'
            cand -q 'Print nothing: only whether the image''s tables can be walked (the exit code)'
            cand --quiet 'Print nothing: only whether the image''s tables can be walked (the exit code)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'vimg;check'= {
            cand -f 'Image format (probed from the content when not given)'
            cand --format 'Image format (probed from the content when not given)'
            cand --output 'Output style'
            cand -T 'Cache mode for reading (qemu-img''s -T; vimg reads through the page cache whatever it says): none, writeback, writethrough, directsync, unsafe'
            cand --cache 'Cache mode for reading (qemu-img''s -T; vimg reads through the page cache whatever it says): none, writeback, writethrough, directsync, unsafe'
            cand --confine 'Open no file an image names (parents, extents) outside DIR, links resolved (for untrusted images, with -f)'
            cand --object 'Not supported: QEMU objects (secrets of encrypted images) have no use for VMDK and VHD, which are not encrypted'
            cand -r 'Repair: leaks (free space nothing references, rewrite a footer copy) or all (also rebuild or clear wrong metadata)'
            cand --repair 'Repair: leaks (free space nothing references, rewrite a footer copy) or all (also rebuild or clear wrong metadata)'
            cand -U 'Read the image even while another process may be writing it'
            cand --force-share 'Read the image even while another process may be writing it'
            cand --no-backing 'Refuse an image that has a parent (a delta or differencing disk)'
            cand --ignore-parent-id 'Read through a parent whose ID (VMDK CID, VHD UUID) is not the one its delta recorded, for read-only recovery (`vimg rebase -u` fixes the link)'
            cand --image-opts 'Not supported: vimg opens files by name, not QEMU image specifications (qemu-img''s --image-opts)'
            cand --no-chain 'Check this image only, not the images of its backing chain'
            cand -q 'Print only the findings, not the summary'
            cand --quiet 'Print only the findings, not the summary'
            cand -p 'Show a progress bar, a step for each image of the chain (only when stderr is a terminal)'
            cand --progress 'Show a progress bar, a step for each image of the chain (only when stderr is a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'vimg;compare'= {
            cand -f 'Format of the first image (probed when not given)'
            cand --a-format 'Format of the first image (probed when not given)'
            cand -F 'Format of the second image (probed when not given)'
            cand --b-format 'Format of the second image (probed when not given)'
            cand -T 'Cache mode for reading (qemu-img''s -T): accepted; vimg reads through the page cache'
            cand --cache 'Cache mode for reading (qemu-img''s -T): accepted; vimg reads through the page cache'
            cand --object 'Not supported: QEMU objects (secrets of encrypted images) have no use for VMDK and VHD, which are not encrypted'
            cand --image-opts 'Not supported: vimg opens files by name, not QEMU image specifications (qemu-img''s --image-opts)'
            cand -s 'Strict: images of different sizes, or that allocate differently, differ'
            cand --strict 'Strict: images of different sizes, or that allocate differently, differ'
            cand -p 'Show a progress bar (only when stderr is a terminal)'
            cand --progress 'Show a progress bar (only when stderr is a terminal)'
            cand -q 'Print nothing (the exit code says)'
            cand --quiet 'Print nothing (the exit code says)'
            cand -U 'Read the images even while another process may be writing them'
            cand --force-share 'Read the images even while another process may be writing them'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'vimg;amend'= {
            cand -f 'Image format (probed from the content when not given)'
            cand --format 'Image format (probed from the content when not given)'
            cand -o 'What to change, as key=value[,key=value...]'
            cand --options 'What to change, as key=value[,key=value...]'
            cand -t 'Cache mode (qemu-img''s -t): accepted for scripts; the amend is written and flushed whatever it says'
            cand --cache 'Cache mode (qemu-img''s -t): accepted for scripts; the amend is written and flushed whatever it says'
            cand --object 'Not supported: QEMU objects (secrets of encrypted images) have no use for VMDK and VHD, which are not encrypted'
            cand -q 'Print nothing on success'
            cand --quiet 'Print nothing on success'
            cand -p 'Accepted for scripts: an amend is one write, too quick for a bar'
            cand --progress 'Accepted for scripts: an amend is one write, too quick for a bar'
            cand --force 'qemu-img''s "allow unsafe operations": vimg amends only what keeps every reader seeing the same disk, with or without it'
            cand --image-opts 'Not supported: vimg opens files by name, not QEMU image specifications (qemu-img''s --image-opts)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'vimg;measure'= {
            cand -f 'Format of SOURCE (probed when not given)'
            cand --format 'Format of SOURCE (probed when not given)'
            cand -O 'Output format'
            cand --target-format 'Output format'
            cand -o 'Options of the output format as key=value[,key=value...]'
            cand --options 'Options of the output format as key=value[,key=value...]'
            cand -s 'Measure an empty disk of this size instead of SOURCE'
            cand --size 'Measure an empty disk of this size instead of SOURCE'
            cand -l 'Not supported: VMDK and VHD images have no internal snapshots to measure (qemu-img''s -l)'
            cand --snapshot 'Not supported: VMDK and VHD images have no internal snapshots to measure (qemu-img''s -l)'
            cand --object 'Not supported: QEMU objects (secrets of encrypted images) have no use for VMDK and VHD, which are not encrypted'
            cand --output 'Output style'
            cand -q 'Print nothing: only whether it can be measured (the exit code)'
            cand --quiet 'Print nothing: only whether it can be measured (the exit code)'
            cand --image-opts 'Not supported: vimg opens files by name, not QEMU image specifications (qemu-img''s --image-opts)'
            cand -U 'Read SOURCE even while another process may be writing it'
            cand --force-share 'Read SOURCE even while another process may be writing it'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'vimg;compact'= {
            cand -f 'Image format (probed from the content when not given)'
            cand --format 'Image format (probed from the content when not given)'
            cand -q 'Print nothing on success'
            cand --quiet 'Print nothing on success'
            cand -p 'Show a progress bar (only when stderr is a terminal)'
            cand --progress 'Show a progress bar (only when stderr is a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'vimg;resize'= {
            cand -f 'Image format (probed from the content when not given)'
            cand --format 'Image format (probed from the content when not given)'
            cand --preallocation 'How the new space is allocated: off (sparse), metadata (only the tables; what vimg does anyway), falloc (reserved in the file system), full (written with zeros). falloc and full need a disk whose bytes lie in its files as they are (raw, fixed VHD, flat VMDK); a sparse VMDK or dynamic VHD allocates as it is written'
            cand --object 'Not supported: QEMU objects (secrets of encrypted images) have no use for VMDK and VHD, which are not encrypted'
            cand --shrink 'Allow the disk to become smaller'
            cand --discard-data 'With --shrink: drop what is stored past the new end'
            cand -q 'Print nothing on success'
            cand --quiet 'Print nothing on success'
            cand -p 'Show a progress bar while the part past a smaller size is read (only when stderr is a terminal)'
            cand --progress 'Show a progress bar while the part past a smaller size is read (only when stderr is a terminal)'
            cand --image-opts 'Not supported: vimg opens files by name, not QEMU image specifications (qemu-img''s --image-opts)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'vimg;snapshot'= {
            cand -c 'Not supported: make an internal snapshot (use `vimg snapshot create`)'
            cand --create 'Not supported: make an internal snapshot (use `vimg snapshot create`)'
            cand -a 'Not supported: go back to an internal snapshot'
            cand --apply 'Not supported: go back to an internal snapshot'
            cand -d 'Not supported: delete an internal snapshot'
            cand --delete 'Not supported: delete an internal snapshot'
            cand -f 'Image format (probed from the content when not given)'
            cand --format 'Image format (probed from the content when not given)'
            cand --object 'Not supported: QEMU objects (secrets of encrypted images) have no use for VMDK and VHD, which are not encrypted'
            cand -l 'List the internal snapshots of FILE (VMDK and VHD have none: the list is empty); the default'
            cand --list 'List the internal snapshots of FILE (VMDK and VHD have none: the list is empty); the default'
            cand -U 'Read the image even while another process may be writing it'
            cand --force-share 'Read the image even while another process may be writing it'
            cand -q 'Print nothing'
            cand --quiet 'Print nothing'
            cand --image-opts 'Not supported: vimg opens files by name, not QEMU image specifications (qemu-img''s --image-opts)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand create 'Make a new, empty delta over BASE (a VMware snapshot, a differencing VHD)'
            cand commit 'Write a delta''s data into its parent, then empty and relink the delta'
            cand list 'Show a delta''s chain down to its base, and whether each link holds'
            cand rebase 'Give a delta another parent (or none), keeping what it reads'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'vimg;snapshot;create'= {
            cand -o 'Options of the delta''s format as key=value[,key=value...]; `-o help` lists them'
            cand -t 'When to flush the new image to disk: unsafe (never), writeback, none, writethrough or directsync (before it is moved into place). Without -t, only an image that replaces an existing file is flushed'
            cand --cache 'When to flush the new image to disk: unsafe (never), writeback, none, writethrough or directsync (before it is moved into place). Without -t, only an image that replaces an existing file is flushed'
            cand --target-cache 'When to flush the new image to disk: unsafe (never), writeback, none, writethrough or directsync (before it is moved into place). Without -t, only an image that replaces an existing file is flushed'
            cand --force 'Replace the target if it exists'
            cand -q 'Print nothing on success'
            cand --quiet 'Print nothing on success'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'vimg;snapshot;commit'= {
            cand -f 'Format of DELTA (probed from the content when not given)'
            cand --format 'Format of DELTA (probed from the content when not given)'
            cand -b 'Commit into BASE, further down DELTA''s chain, instead of its parent: DELTA is then relinked to BASE, and the layers between no longer read what they did (delete them)'
            cand --base 'Commit into BASE, further down DELTA''s chain, instead of its parent: DELTA is then relinked to BASE, and the layers between no longer read what they did (delete them)'
            cand -t 'Cache mode (qemu-img''s -t): accepted for scripts; vimg''s in-place writes keep their crash-safe order whatever it says'
            cand --cache 'Cache mode (qemu-img''s -t): accepted for scripts; vimg''s in-place writes keep their crash-safe order whatever it says'
            cand -r 'Move at most RATE bytes a second (10M, 1G; binary units), so that the commit does not starve a busy host'
            cand --rate 'Move at most RATE bytes a second (10M, 1G; binary units), so that the commit does not starve a busy host'
            cand --object 'Not supported: QEMU objects (secrets of encrypted images) have no use for VMDK and VHD, which are not encrypted'
            cand -d 'Keep DELTA''s data (do not empty it)'
            cand --drop 'Keep DELTA''s data (do not empty it)'
            cand --image-opts 'Not supported: vimg opens files by name, not QEMU image specifications (qemu-img''s --image-opts)'
            cand --force 'Commit even though other deltas of the parent (which the commit invalidates) lie beside it'
            cand -p 'Show a progress bar (only when stderr is a terminal)'
            cand --progress 'Show a progress bar (only when stderr is a terminal)'
            cand -q 'Print nothing on success'
            cand --quiet 'Print nothing on success'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'vimg;snapshot;list'= {
            cand -f 'Image format (probed from the content when not given)'
            cand --format 'Image format (probed from the content when not given)'
            cand --output 'Output style'
            cand --confine 'Open no file an image names (parents, extents) outside DIR, links resolved (for untrusted images, with -f)'
            cand -U 'Read the images even while another process may be writing them'
            cand --force-share 'Read the images even while another process may be writing them'
            cand -q 'Print nothing: the exit code says whether every link is valid'
            cand --quiet 'Print nothing: the exit code says whether every link is valid'
            cand --no-backing 'Refuse an image that has a parent (a delta or differencing disk)'
            cand --ignore-parent-id 'Read through a parent whose ID (VMDK CID, VHD UUID) is not the one its delta recorded, for read-only recovery (`vimg rebase -u` fixes the link)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'vimg;snapshot;rebase'= {
            cand -f 'Format of DELTA (probed from the content when not given)'
            cand --format 'Format of DELTA (probed from the content when not given)'
            cand -b 'The new parent ("" for none); a relative path is relative to DELTA''s folder, as in qemu-img'
            cand --backing 'The new parent ("" for none); a relative path is relative to DELTA''s folder, as in qemu-img'
            cand -F 'Format of NEWBASE (probed when not given)'
            cand --backing-format 'Format of NEWBASE (probed when not given)'
            cand -t 'Cache mode of DELTA (qemu-img''s -t): accepted for scripts; vimg''s in-place writes keep their crash-safe order whatever it says'
            cand --cache 'Cache mode of DELTA (qemu-img''s -t): accepted for scripts; vimg''s in-place writes keep their crash-safe order whatever it says'
            cand -T 'Cache mode of the parents (qemu-img''s -T): accepted; vimg reads through the page cache'
            cand --backing-cache 'Cache mode of the parents (qemu-img''s -T): accepted; vimg reads through the page cache'
            cand --object 'Not supported: QEMU objects (secrets of encrypted images) have no use for VMDK and VHD, which are not encrypted'
            cand -u 'Unsafe: rewrite the link only, copying nothing (the old parent need not be there)'
            cand --backing-unsafe 'Unsafe: rewrite the link only, copying nothing (the old parent need not be there)'
            cand -U 'Read the old and new parents even while another process may be writing them'
            cand --force-share 'Read the old and new parents even while another process may be writing them'
            cand -c 'Not supported: VMDK deltas and differencing VHDs hold no compressed data (as qemu-img says for them)'
            cand --compress 'Not supported: VMDK deltas and differencing VHDs hold no compressed data (as qemu-img says for them)'
            cand --image-opts 'Not supported: vimg opens files by name, not QEMU image specifications (qemu-img''s --image-opts)'
            cand -p 'Show a progress bar (only when stderr is a terminal)'
            cand --progress 'Show a progress bar (only when stderr is a terminal)'
            cand -q 'Print nothing on success'
            cand --quiet 'Print nothing on success'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'vimg;snapshot;help'= {
            cand create 'Make a new, empty delta over BASE (a VMware snapshot, a differencing VHD)'
            cand commit 'Write a delta''s data into its parent, then empty and relink the delta'
            cand list 'Show a delta''s chain down to its base, and whether each link holds'
            cand rebase 'Give a delta another parent (or none), keeping what it reads'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'vimg;snapshot;help;create'= {
        }
        &'vimg;snapshot;help;commit'= {
        }
        &'vimg;snapshot;help;list'= {
        }
        &'vimg;snapshot;help;rebase'= {
        }
        &'vimg;snapshot;help;help'= {
        }
        &'vimg;commit'= {
            cand -f 'Format of DELTA (probed from the content when not given)'
            cand --format 'Format of DELTA (probed from the content when not given)'
            cand -b 'Commit into BASE, further down DELTA''s chain, instead of its parent: DELTA is then relinked to BASE, and the layers between no longer read what they did (delete them)'
            cand --base 'Commit into BASE, further down DELTA''s chain, instead of its parent: DELTA is then relinked to BASE, and the layers between no longer read what they did (delete them)'
            cand -t 'Cache mode (qemu-img''s -t): accepted for scripts; vimg''s in-place writes keep their crash-safe order whatever it says'
            cand --cache 'Cache mode (qemu-img''s -t): accepted for scripts; vimg''s in-place writes keep their crash-safe order whatever it says'
            cand -r 'Move at most RATE bytes a second (10M, 1G; binary units), so that the commit does not starve a busy host'
            cand --rate 'Move at most RATE bytes a second (10M, 1G; binary units), so that the commit does not starve a busy host'
            cand --object 'Not supported: QEMU objects (secrets of encrypted images) have no use for VMDK and VHD, which are not encrypted'
            cand -d 'Keep DELTA''s data (do not empty it)'
            cand --drop 'Keep DELTA''s data (do not empty it)'
            cand --image-opts 'Not supported: vimg opens files by name, not QEMU image specifications (qemu-img''s --image-opts)'
            cand --force 'Commit even though other deltas of the parent (which the commit invalidates) lie beside it'
            cand -p 'Show a progress bar (only when stderr is a terminal)'
            cand --progress 'Show a progress bar (only when stderr is a terminal)'
            cand -q 'Print nothing on success'
            cand --quiet 'Print nothing on success'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'vimg;rebase'= {
            cand -f 'Format of DELTA (probed from the content when not given)'
            cand --format 'Format of DELTA (probed from the content when not given)'
            cand -b 'The new parent ("" for none); a relative path is relative to DELTA''s folder, as in qemu-img'
            cand --backing 'The new parent ("" for none); a relative path is relative to DELTA''s folder, as in qemu-img'
            cand -F 'Format of NEWBASE (probed when not given)'
            cand --backing-format 'Format of NEWBASE (probed when not given)'
            cand -t 'Cache mode of DELTA (qemu-img''s -t): accepted for scripts; vimg''s in-place writes keep their crash-safe order whatever it says'
            cand --cache 'Cache mode of DELTA (qemu-img''s -t): accepted for scripts; vimg''s in-place writes keep their crash-safe order whatever it says'
            cand -T 'Cache mode of the parents (qemu-img''s -T): accepted; vimg reads through the page cache'
            cand --backing-cache 'Cache mode of the parents (qemu-img''s -T): accepted; vimg reads through the page cache'
            cand --object 'Not supported: QEMU objects (secrets of encrypted images) have no use for VMDK and VHD, which are not encrypted'
            cand -u 'Unsafe: rewrite the link only, copying nothing (the old parent need not be there)'
            cand --backing-unsafe 'Unsafe: rewrite the link only, copying nothing (the old parent need not be there)'
            cand -U 'Read the old and new parents even while another process may be writing them'
            cand --force-share 'Read the old and new parents even while another process may be writing them'
            cand -c 'Not supported: VMDK deltas and differencing VHDs hold no compressed data (as qemu-img says for them)'
            cand --compress 'Not supported: VMDK deltas and differencing VHDs hold no compressed data (as qemu-img says for them)'
            cand --image-opts 'Not supported: vimg opens files by name, not QEMU image specifications (qemu-img''s --image-opts)'
            cand -p 'Show a progress bar (only when stderr is a terminal)'
            cand --progress 'Show a progress bar (only when stderr is a terminal)'
            cand -q 'Print nothing on success'
            cand --quiet 'Print nothing on success'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'vimg;completions'= {
            cand -q 'Print nothing (only whether SHELL is known: the exit code)'
            cand --quiet 'Print nothing (only whether SHELL is known: the exit code)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'vimg;help'= {
            cand create 'Create a new, empty disk image'
            cand info 'Show an image''s format, virtual and allocated size, and format details'
            cand convert 'Convert a disk image to another format or subformat'
            cand map 'Show which ranges of an image hold data, which read as zeros, at which depth of the backing chain, and where in which file they are'
            cand check 'Check an image and its backing chain for inconsistencies; -r repairs'
            cand compare 'Compare what two images read, across formats and backing chains'
            cand amend 'Change in place what can change without moving data'
            cand measure 'Show the space a conversion into -O FMT needs'
            cand compact 'Give back the space of grains and blocks that hold only zeros'
            cand resize 'Change a disk''s size in place'
            cand snapshot 'Make and manage delta images (VMware snapshots, differencing VHDs)'
            cand commit 'Write a delta''s data into its parent (the same as `snapshot commit`)'
            cand rebase 'Move a delta onto another parent (the same as `snapshot rebase`)'
            cand completions 'Print the shell completion script for SHELL'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'vimg;help;create'= {
        }
        &'vimg;help;info'= {
        }
        &'vimg;help;convert'= {
        }
        &'vimg;help;map'= {
        }
        &'vimg;help;check'= {
        }
        &'vimg;help;compare'= {
        }
        &'vimg;help;amend'= {
        }
        &'vimg;help;measure'= {
        }
        &'vimg;help;compact'= {
        }
        &'vimg;help;resize'= {
        }
        &'vimg;help;snapshot'= {
            cand create 'Make a new, empty delta over BASE (a VMware snapshot, a differencing VHD)'
            cand commit 'Write a delta''s data into its parent, then empty and relink the delta'
            cand list 'Show a delta''s chain down to its base, and whether each link holds'
            cand rebase 'Give a delta another parent (or none), keeping what it reads'
        }
        &'vimg;help;snapshot;create'= {
        }
        &'vimg;help;snapshot;commit'= {
        }
        &'vimg;help;snapshot;list'= {
        }
        &'vimg;help;snapshot;rebase'= {
        }
        &'vimg;help;commit'= {
        }
        &'vimg;help;rebase'= {
        }
        &'vimg;help;completions'= {
        }
        &'vimg;help;help'= {
        }
    ]
    $completions[$command]
}
