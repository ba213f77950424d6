
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'vimg' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'vimg'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'vimg' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Create a new, empty disk image')
            [CompletionResult]::new('info', 'info', [CompletionResultType]::ParameterValue, 'Show an image''s format, virtual and allocated size, and format details')
            [CompletionResult]::new('convert', 'convert', [CompletionResultType]::ParameterValue, 'Convert a disk image to another format or subformat')
            [CompletionResult]::new('map', 'map', [CompletionResultType]::ParameterValue, 'Show which ranges of an image hold data, which read as zeros, at which depth of the backing chain, and where in which file they are')
            [CompletionResult]::new('check', 'check', [CompletionResultType]::ParameterValue, 'Check an image and its backing chain for inconsistencies; -r repairs')
            [CompletionResult]::new('compare', 'compare', [CompletionResultType]::ParameterValue, 'Compare what two images read, across formats and backing chains')
            [CompletionResult]::new('amend', 'amend', [CompletionResultType]::ParameterValue, 'Change in place what can change without moving data')
            [CompletionResult]::new('measure', 'measure', [CompletionResultType]::ParameterValue, 'Show the space a conversion into -O FMT needs')
            [CompletionResult]::new('compact', 'compact', [CompletionResultType]::ParameterValue, 'Give back the space of grains and blocks that hold only zeros')
            [CompletionResult]::new('resize', 'resize', [CompletionResultType]::ParameterValue, 'Change a disk''s size in place')
            [CompletionResult]::new('snapshot', 'snapshot', [CompletionResultType]::ParameterValue, 'Make and manage delta images (VMware snapshots, differencing VHDs)')
            [CompletionResult]::new('commit', 'commit', [CompletionResultType]::ParameterValue, 'Write a delta''s data into its parent (the same as `snapshot commit`)')
            [CompletionResult]::new('rebase', 'rebase', [CompletionResultType]::ParameterValue, 'Move a delta onto another parent (the same as `snapshot rebase`)')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print the shell completion script for SHELL')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'vimg;create' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Image format: vmdk, vhd (or vpc), raw')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Image format: vmdk, vhd (or vpc), raw')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Format options as key=value[,key=value...]; may be repeated (vmdk: subformat, adapter_type, hwversion, compat6, toolsversion, zeroed_grain, compression_level; vhd: subformat=dynamic|fixed, force_size, block_size, azure; all: size, backing_file, backing_fmt as qemu-img takes them). `-o help` lists them with their values')
            [CompletionResult]::new('--options', '--options', [CompletionResultType]::ParameterName, 'Format options as key=value[,key=value...]; may be repeated (vmdk: subformat, adapter_type, hwversion, compat6, toolsversion, zeroed_grain, compression_level; vhd: subformat=dynamic|fixed, force_size, block_size, azure; all: size, backing_file, backing_fmt as qemu-img takes them). `-o help` lists them with their values')
            [CompletionResult]::new('-t', '-t', [CompletionResultType]::ParameterName, 'When to flush the new image to disk: unsafe (never), writeback, none, writethrough or directsync (before it is moved into place). Without -t, only an image that replaces an existing file is flushed')
            [CompletionResult]::new('--cache', '--cache', [CompletionResultType]::ParameterName, 'When to flush the new image to disk: unsafe (never), writeback, none, writethrough or directsync (before it is moved into place). Without -t, only an image that replaces an existing file is flushed')
            [CompletionResult]::new('--target-cache', '--target-cache', [CompletionResultType]::ParameterName, 'When to flush the new image to disk: unsafe (never), writeback, none, writethrough or directsync (before it is moved into place). Without -t, only an image that replaces an existing file is flushed')
            [CompletionResult]::new('-b', '-b', [CompletionResultType]::ParameterName, 'Make a delta (snapshot) over this parent image; a relative path is relative to FILE''s folder, as in qemu-img')
            [CompletionResult]::new('--backing', '--backing', [CompletionResultType]::ParameterName, 'Make a delta (snapshot) over this parent image; a relative path is relative to FILE''s folder, as in qemu-img')
            [CompletionResult]::new('-F', '-F ', [CompletionResultType]::ParameterName, 'Format of the parent image (it must match -f)')
            [CompletionResult]::new('--backing-format', '--backing-format', [CompletionResultType]::ParameterName, 'Format of the parent image (it must match -f)')
            [CompletionResult]::new('--object', '--object', [CompletionResultType]::ParameterName, 'Not supported: QEMU objects (secrets of encrypted images) have no use for VMDK and VHD, which are not encrypted')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Replace the target if it exists')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success')
            [CompletionResult]::new('-u', '-u', [CompletionResultType]::ParameterName, 'Accepted as qemu-img''s "do not fail if the parent cannot be read"; but a VMDK delta and a differencing VHD record their parent''s content ID (CID, UUID), so vimg must read the parent all the same (as qemu-img must for a VMDK)')
            [CompletionResult]::new('--backing-unsafe', '--backing-unsafe', [CompletionResultType]::ParameterName, 'Accepted as qemu-img''s "do not fail if the parent cannot be read"; but a VMDK delta and a differencing VHD record their parent''s content ID (CID, UUID), so vimg must read the parent all the same (as qemu-img must for a VMDK)')
            [CompletionResult]::new('--image-opts', '--image-opts', [CompletionResultType]::ParameterName, 'Not supported: vimg opens files by name, not QEMU image specifications (qemu-img''s --image-opts)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'vimg;info' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Image format (probed from the content when not given)')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Image format (probed from the content when not given)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output style')
            [CompletionResult]::new('-T', '-T ', [CompletionResultType]::ParameterName, 'Cache mode for reading (qemu-img''s -T; vimg reads through the page cache whatever it says): none, writeback, writethrough, directsync, unsafe')
            [CompletionResult]::new('--cache', '--cache', [CompletionResultType]::ParameterName, 'Cache mode for reading (qemu-img''s -T; vimg reads through the page cache whatever it says): none, writeback, writethrough, directsync, unsafe')
            [CompletionResult]::new('--confine', '--confine', [CompletionResultType]::ParameterName, 'Open no file an image names (parents, extents) outside DIR, links resolved (for untrusted images, with -f)')
            [CompletionResult]::new('--object', '--object', [CompletionResultType]::ParameterName, 'Not supported: QEMU objects (secrets of encrypted images) have no use for VMDK and VHD, which are not encrypted')
            [CompletionResult]::new('-U', '-U ', [CompletionResultType]::ParameterName, 'Read the image even while another process may be writing it')
            [CompletionResult]::new('--force-share', '--force-share', [CompletionResultType]::ParameterName, 'Read the image even while another process may be writing it')
            [CompletionResult]::new('--no-backing', '--no-backing', [CompletionResultType]::ParameterName, 'Refuse an image that has a parent (a delta or differencing disk)')
            [CompletionResult]::new('--ignore-parent-id', '--ignore-parent-id', [CompletionResultType]::ParameterName, 'Read through a parent whose ID (VMDK CID, VHD UUID) is not the one its delta recorded, for read-only recovery (`vimg rebase -u` fixes the link)')
            [CompletionResult]::new('--image-opts', '--image-opts', [CompletionResultType]::ParameterName, 'Not supported: vimg opens files by name, not QEMU image specifications (qemu-img''s --image-opts)')
            [CompletionResult]::new('-b', '-b', [CompletionResultType]::ParameterName, 'Show every image of the backing chain, top first')
            [CompletionResult]::new('--backing-chain', '--backing-chain', [CompletionResultType]::ParameterName, 'Show every image of the backing chain, top first')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing: only whether the image opens (the exit code)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing: only whether the image opens (the exit code)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'vimg;convert' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Source format (probed from the content when not given)')
            [CompletionResult]::new('--source-format', '--source-format', [CompletionResultType]::ParameterName, 'Source format (probed from the content when not given)')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Source format (probed from the content when not given)')
            [CompletionResult]::new('-O', '-O ', [CompletionResultType]::ParameterName, 'Target format: vmdk, vhd (or vpc), raw [default: raw; with -n, the target''s own]')
            [CompletionResult]::new('--target-format', '--target-format', [CompletionResultType]::ParameterName, 'Target format: vmdk, vhd (or vpc), raw [default: raw; with -n, the target''s own]')
            [CompletionResult]::new('--output-format', '--output-format', [CompletionResultType]::ParameterName, 'Target format: vmdk, vhd (or vpc), raw [default: raw; with -n, the target''s own]')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Target format options as key=value[,key=value...]; may be repeated')
            [CompletionResult]::new('--target-options', '--target-options', [CompletionResultType]::ParameterName, 'Target format options as key=value[,key=value...]; may be repeated')
            [CompletionResult]::new('--options', '--options', [CompletionResultType]::ParameterName, 'Target format options as key=value[,key=value...]; may be repeated')
            [CompletionResult]::new('-S', '-S ', [CompletionResultType]::ParameterName, 'Zero runs of at least this many bytes (a multiple of 512) are left unallocated in the target; 0 allocates everything')
            [CompletionResult]::new('--sparse-size', '--sparse-size', [CompletionResultType]::ParameterName, 'Zero runs of at least this many bytes (a multiple of 512) are left unallocated in the target; 0 allocates everything')
            [CompletionResult]::new('-T', '-T ', [CompletionResultType]::ParameterName, 'Cache mode of the source (qemu-img''s -T): accepted; vimg reads through the page cache')
            [CompletionResult]::new('--source-cache', '--source-cache', [CompletionResultType]::ParameterName, 'Cache mode of the source (qemu-img''s -T): accepted; vimg reads through the page cache')
            [CompletionResult]::new('-B', '-B ', [CompletionResultType]::ParameterName, 'Make the target a delta (VMDK snapshot, differencing VHD) over BACKING, holding only what differs from it; a relative path is relative to TARGET''s folder')
            [CompletionResult]::new('--backing', '--backing', [CompletionResultType]::ParameterName, 'Make the target a delta (VMDK snapshot, differencing VHD) over BACKING, holding only what differs from it; a relative path is relative to TARGET''s folder')
            [CompletionResult]::new('-F', '-F ', [CompletionResultType]::ParameterName, 'Format of BACKING (probed when not given); without -B it has no effect, as in qemu-img')
            [CompletionResult]::new('--backing-format', '--backing-format', [CompletionResultType]::ParameterName, 'Format of BACKING (probed when not given); without -B it has no effect, as in qemu-img')
            [CompletionResult]::new('-r', '-r', [CompletionResultType]::ParameterName, 'Move at most RATE bytes a second (10M, 1G; binary units)')
            [CompletionResult]::new('--rate', '--rate', [CompletionResultType]::ParameterName, 'Move at most RATE bytes a second (10M, 1G; binary units)')
            [CompletionResult]::new('-m', '-m', [CompletionResultType]::ParameterName, 'Threads for compressing and decompressing (default: one a core; the reading and writing threads come on top)')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Threads for compressing and decompressing (default: one a core; the reading and writing threads come on top)')
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Not supported: VMDK and VHD images have no internal snapshots (qemu-img''s -l)')
            [CompletionResult]::new('--source-snapshot', '--source-snapshot', [CompletionResultType]::ParameterName, 'Not supported: VMDK and VHD images have no internal snapshots (qemu-img''s -l)')
            [CompletionResult]::new('--object', '--object', [CompletionResultType]::ParameterName, 'Not supported: QEMU objects (secrets of encrypted images) have no use for VMDK and VHD, which are not encrypted')
            [CompletionResult]::new('--confine', '--confine', [CompletionResultType]::ParameterName, 'Open no file an image names (parents, extents) outside DIR, links resolved (for untrusted images, with -f)')
            [CompletionResult]::new('-t', '-t', [CompletionResultType]::ParameterName, 'When to flush the new image to disk: unsafe (never), writeback, none, writethrough or directsync (before it is moved into place). Without -t, only an image that replaces an existing file is flushed')
            [CompletionResult]::new('--cache', '--cache', [CompletionResultType]::ParameterName, 'When to flush the new image to disk: unsafe (never), writeback, none, writethrough or directsync (before it is moved into place). Without -t, only an image that replaces an existing file is flushed')
            [CompletionResult]::new('--target-cache', '--target-cache', [CompletionResultType]::ParameterName, 'When to flush the new image to disk: unsafe (never), writeback, none, writethrough or directsync (before it is moved into place). Without -t, only an image that replaces an existing file is flushed')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Show a progress bar (only when stderr is a terminal)')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'Show a progress bar (only when stderr is a terminal)')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Compress the target (streamOptimized VMDK, chosen when no subformat is given; an error for targets that cannot be compressed)')
            [CompletionResult]::new('--compress', '--compress', [CompletionResultType]::ParameterName, 'Compress the target (streamOptimized VMDK, chosen when no subformat is given; an error for targets that cannot be compressed)')
            [CompletionResult]::new('-U', '-U ', [CompletionResultType]::ParameterName, 'Read the source even while another process may be writing it')
            [CompletionResult]::new('--force-share', '--force-share', [CompletionResultType]::ParameterName, 'Read the source even while another process may be writing it')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Write into TARGET, which exists (an image of -O''s format, or a raw file or block device) and is at least the source''s size, instead of creating it; only what reads differently is written')
            [CompletionResult]::new('--no-create', '--no-create', [CompletionResultType]::ParameterName, 'Write into TARGET, which exists (an image of -O''s format, or a raw file or block device) and is at least the source''s size, instead of creating it; only what reads differently is written')
            [CompletionResult]::new('--target-is-zero', '--target-is-zero', [CompletionResultType]::ParameterName, 'With -n: TARGET reads as zeros already, so zeros are not written')
            [CompletionResult]::new('-W', '-W ', [CompletionResultType]::ParameterName, 'qemu-img''s out-of-order writes: accepted; vimg reads and writes on their own threads already, and writes in order so that the target is laid out front to back')
            [CompletionResult]::new('--oob-writes', '--oob-writes', [CompletionResultType]::ParameterName, 'qemu-img''s out-of-order writes: accepted; vimg reads and writes on their own threads already, and writes in order so that the target is laid out front to back')
            [CompletionResult]::new('-C', '-C ', [CompletionResultType]::ParameterName, 'Copy in the kernel (copy_file_range) where the source''s bytes and the target''s places lie as they are in files (raw, fixed VHD, flat VMDK); zeros in the source''s data are then copied as they are')
            [CompletionResult]::new('--copy-range-offloading', '--copy-range-offloading', [CompletionResultType]::ParameterName, 'Copy in the kernel (copy_file_range) where the source''s bytes and the target''s places lie as they are in files (raw, fixed VHD, flat VMDK); zeros in the source''s data are then copied as they are')
            [CompletionResult]::new('--salvage', '--salvage', [CompletionResultType]::ParameterName, 'Go on past read errors: what cannot be read is written as zeros, each such range is reported, and the exit code is 2')
            [CompletionResult]::new('--source-image-opts', '--source-image-opts', [CompletionResultType]::ParameterName, 'Not supported: vimg takes file names, not QEMU image specifications')
            [CompletionResult]::new('--target-image-opts', '--target-image-opts', [CompletionResultType]::ParameterName, 'Not supported: vimg takes file names, not QEMU image specifications')
            [CompletionResult]::new('--bitmaps', '--bitmaps', [CompletionResultType]::ParameterName, 'Not supported: VMDK and VHD images have no persistent bitmaps')
            [CompletionResult]::new('--skip-broken-bitmaps', '--skip-broken-bitmaps', [CompletionResultType]::ParameterName, 'Not supported: VMDK and VHD images have no persistent bitmaps')
            [CompletionResult]::new('--image-opts', '--image-opts', [CompletionResultType]::ParameterName, 'Not supported: vimg opens files by name, not QEMU image specifications (qemu-img''s --image-opts)')
            [CompletionResult]::new('--no-backing', '--no-backing', [CompletionResultType]::ParameterName, 'Refuse an image that has a parent (a delta or differencing disk)')
            [CompletionResult]::new('--ignore-parent-id', '--ignore-parent-id', [CompletionResultType]::ParameterName, 'Read through a parent whose ID (VMDK CID, VHD UUID) is not the one its delta recorded, for read-only recovery (`vimg rebase -u` fixes the link)')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Replace the target if it exists')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'vimg;map' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Image format (probed from the content when not given)')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Image format (probed from the content when not given)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output style')
            [CompletionResult]::new('-T', '-T ', [CompletionResultType]::ParameterName, 'Cache mode for reading (qemu-img''s -T; vimg reads through the page cache whatever it says): none, writeback, writethrough, directsync, unsafe')
            [CompletionResult]::new('--cache', '--cache', [CompletionResultType]::ParameterName, 'Cache mode for reading (qemu-img''s -T; vimg reads through the page cache whatever it says): none, writeback, writethrough, directsync, unsafe')
            [CompletionResult]::new('--confine', '--confine', [CompletionResultType]::ParameterName, 'Open no file an image names (parents, extents) outside DIR, links resolved (for untrusted images, with -f)')
            [CompletionResult]::new('--object', '--object', [CompletionResultType]::ParameterName, 'Not supported: QEMU objects (secrets of encrypted images) have no use for VMDK and VHD, which are not encrypted')
            [CompletionResult]::new('--start-offset', '--start-offset', [CompletionResultType]::ParameterName, 'Start mapping at this byte offset')
            [CompletionResult]::new('--max-length', '--max-length', [CompletionResultType]::ParameterName, 'Map at most this many bytes')
            [CompletionResult]::new('-U', '-U ', [CompletionResultType]::ParameterName, 'Read the image even while another process may be writing it')
            [CompletionResult]::new('--force-share', '--force-share', [CompletionResultType]::ParameterName, 'Read the image even while another process may be writing it')
            [CompletionResult]::new('--no-backing', '--no-backing', [CompletionResultType]::ParameterName, 'Refuse an image that has a parent (a delta or differencing disk)')
            [CompletionResult]::new('--ignore-parent-id', '--ignore-parent-id', [CompletionResultType]::ParameterName, 'Read through a parent whose ID (VMDK CID, VHD UUID) is not the one its delta recorded, for read-only recovery (`vimg rebase -u` fixes the link)')
            [CompletionResult]::new('--image-opts', '--image-opts', [CompletionResultType]::ParameterName, 'Not supported: vimg opens files by name, not QEMU image specifications (qemu-img''s --image-opts)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing: only whether the image''s tables can be walked (the exit code)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing: only whether the image''s tables can be walked (the exit code)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'vimg;check' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Image format (probed from the content when not given)')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Image format (probed from the content when not given)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output style')
            [CompletionResult]::new('-T', '-T ', [CompletionResultType]::ParameterName, 'Cache mode for reading (qemu-img''s -T; vimg reads through the page cache whatever it says): none, writeback, writethrough, directsync, unsafe')
            [CompletionResult]::new('--cache', '--cache', [CompletionResultType]::ParameterName, 'Cache mode for reading (qemu-img''s -T; vimg reads through the page cache whatever it says): none, writeback, writethrough, directsync, unsafe')
            [CompletionResult]::new('--confine', '--confine', [CompletionResultType]::ParameterName, 'Open no file an image names (parents, extents) outside DIR, links resolved (for untrusted images, with -f)')
            [CompletionResult]::new('--object', '--object', [CompletionResultType]::ParameterName, 'Not supported: QEMU objects (secrets of encrypted images) have no use for VMDK and VHD, which are not encrypted')
            [CompletionResult]::new('-r', '-r', [CompletionResultType]::ParameterName, 'Repair: leaks (free space nothing references, rewrite a footer copy) or all (also rebuild or clear wrong metadata)')
            [CompletionResult]::new('--repair', '--repair', [CompletionResultType]::ParameterName, 'Repair: leaks (free space nothing references, rewrite a footer copy) or all (also rebuild or clear wrong metadata)')
            [CompletionResult]::new('-U', '-U ', [CompletionResultType]::ParameterName, 'Read the image even while another process may be writing it')
            [CompletionResult]::new('--force-share', '--force-share', [CompletionResultType]::ParameterName, 'Read the image even while another process may be writing it')
            [CompletionResult]::new('--no-backing', '--no-backing', [CompletionResultType]::ParameterName, 'Refuse an image that has a parent (a delta or differencing disk)')
            [CompletionResult]::new('--ignore-parent-id', '--ignore-parent-id', [CompletionResultType]::ParameterName, 'Read through a parent whose ID (VMDK CID, VHD UUID) is not the one its delta recorded, for read-only recovery (`vimg rebase -u` fixes the link)')
            [CompletionResult]::new('--image-opts', '--image-opts', [CompletionResultType]::ParameterName, 'Not supported: vimg opens files by name, not QEMU image specifications (qemu-img''s --image-opts)')
            [CompletionResult]::new('--no-chain', '--no-chain', [CompletionResultType]::ParameterName, 'Check this image only, not the images of its backing chain')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only the findings, not the summary')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only the findings, not the summary')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Show a progress bar, a step for each image of the chain (only when stderr is a terminal)')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'Show a progress bar, a step for each image of the chain (only when stderr is a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'vimg;compare' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Format of the first image (probed when not given)')
            [CompletionResult]::new('--a-format', '--a-format', [CompletionResultType]::ParameterName, 'Format of the first image (probed when not given)')
            [CompletionResult]::new('-F', '-F ', [CompletionResultType]::ParameterName, 'Format of the second image (probed when not given)')
            [CompletionResult]::new('--b-format', '--b-format', [CompletionResultType]::ParameterName, 'Format of the second image (probed when not given)')
            [CompletionResult]::new('-T', '-T ', [CompletionResultType]::ParameterName, 'Cache mode for reading (qemu-img''s -T): accepted; vimg reads through the page cache')
            [CompletionResult]::new('--cache', '--cache', [CompletionResultType]::ParameterName, 'Cache mode for reading (qemu-img''s -T): accepted; vimg reads through the page cache')
            [CompletionResult]::new('--object', '--object', [CompletionResultType]::ParameterName, 'Not supported: QEMU objects (secrets of encrypted images) have no use for VMDK and VHD, which are not encrypted')
            [CompletionResult]::new('--image-opts', '--image-opts', [CompletionResultType]::ParameterName, 'Not supported: vimg opens files by name, not QEMU image specifications (qemu-img''s --image-opts)')
            [CompletionResult]::new('-s', '-s', [CompletionResultType]::ParameterName, 'Strict: images of different sizes, or that allocate differently, differ')
            [CompletionResult]::new('--strict', '--strict', [CompletionResultType]::ParameterName, 'Strict: images of different sizes, or that allocate differently, differ')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Show a progress bar (only when stderr is a terminal)')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'Show a progress bar (only when stderr is a terminal)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing (the exit code says)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing (the exit code says)')
            [CompletionResult]::new('-U', '-U ', [CompletionResultType]::ParameterName, 'Read the images even while another process may be writing them')
            [CompletionResult]::new('--force-share', '--force-share', [CompletionResultType]::ParameterName, 'Read the images even while another process may be writing them')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'vimg;amend' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Image format (probed from the content when not given)')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Image format (probed from the content when not given)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'What to change, as key=value[,key=value...]')
            [CompletionResult]::new('--options', '--options', [CompletionResultType]::ParameterName, 'What to change, as key=value[,key=value...]')
            [CompletionResult]::new('-t', '-t', [CompletionResultType]::ParameterName, 'Cache mode (qemu-img''s -t): accepted for scripts; the amend is written and flushed whatever it says')
            [CompletionResult]::new('--cache', '--cache', [CompletionResultType]::ParameterName, 'Cache mode (qemu-img''s -t): accepted for scripts; the amend is written and flushed whatever it says')
            [CompletionResult]::new('--object', '--object', [CompletionResultType]::ParameterName, 'Not supported: QEMU objects (secrets of encrypted images) have no use for VMDK and VHD, which are not encrypted')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Accepted for scripts: an amend is one write, too quick for a bar')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'Accepted for scripts: an amend is one write, too quick for a bar')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'qemu-img''s "allow unsafe operations": vimg amends only what keeps every reader seeing the same disk, with or without it')
            [CompletionResult]::new('--image-opts', '--image-opts', [CompletionResultType]::ParameterName, 'Not supported: vimg opens files by name, not QEMU image specifications (qemu-img''s --image-opts)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'vimg;measure' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Format of SOURCE (probed when not given)')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Format of SOURCE (probed when not given)')
            [CompletionResult]::new('-O', '-O ', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--target-format', '--target-format', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Options of the output format as key=value[,key=value...]')
            [CompletionResult]::new('--options', '--options', [CompletionResultType]::ParameterName, 'Options of the output format as key=value[,key=value...]')
            [CompletionResult]::new('-s', '-s', [CompletionResultType]::ParameterName, 'Measure an empty disk of this size instead of SOURCE')
            [CompletionResult]::new('--size', '--size', [CompletionResultType]::ParameterName, 'Measure an empty disk of this size instead of SOURCE')
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Not supported: VMDK and VHD images have no internal snapshots to measure (qemu-img''s -l)')
            [CompletionResult]::new('--snapshot', '--snapshot', [CompletionResultType]::ParameterName, 'Not supported: VMDK and VHD images have no internal snapshots to measure (qemu-img''s -l)')
            [CompletionResult]::new('--object', '--object', [CompletionResultType]::ParameterName, 'Not supported: QEMU objects (secrets of encrypted images) have no use for VMDK and VHD, which are not encrypted')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output style')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing: only whether it can be measured (the exit code)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing: only whether it can be measured (the exit code)')
            [CompletionResult]::new('--image-opts', '--image-opts', [CompletionResultType]::ParameterName, 'Not supported: vimg opens files by name, not QEMU image specifications (qemu-img''s --image-opts)')
            [CompletionResult]::new('-U', '-U ', [CompletionResultType]::ParameterName, 'Read SOURCE even while another process may be writing it')
            [CompletionResult]::new('--force-share', '--force-share', [CompletionResultType]::ParameterName, 'Read SOURCE even while another process may be writing it')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'vimg;compact' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Image format (probed from the content when not given)')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Image format (probed from the content when not given)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Show a progress bar (only when stderr is a terminal)')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'Show a progress bar (only when stderr is a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'vimg;resize' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Image format (probed from the content when not given)')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Image format (probed from the content when not given)')
            [CompletionResult]::new('--preallocation', '--preallocation', [CompletionResultType]::ParameterName, 'How the new space is allocated: off (sparse), metadata (only the tables; what vimg does anyway), falloc (reserved in the file system), full (written with zeros). falloc and full need a disk whose bytes lie in its files as they are (raw, fixed VHD, flat VMDK); a sparse VMDK or dynamic VHD allocates as it is written')
            [CompletionResult]::new('--object', '--object', [CompletionResultType]::ParameterName, 'Not supported: QEMU objects (secrets of encrypted images) have no use for VMDK and VHD, which are not encrypted')
            [CompletionResult]::new('--shrink', '--shrink', [CompletionResultType]::ParameterName, 'Allow the disk to become smaller')
            [CompletionResult]::new('--discard-data', '--discard-data', [CompletionResultType]::ParameterName, 'With --shrink: drop what is stored past the new end')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Show a progress bar while the part past a smaller size is read (only when stderr is a terminal)')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'Show a progress bar while the part past a smaller size is read (only when stderr is a terminal)')
            [CompletionResult]::new('--image-opts', '--image-opts', [CompletionResultType]::ParameterName, 'Not supported: vimg opens files by name, not QEMU image specifications (qemu-img''s --image-opts)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'vimg;snapshot' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Not supported: make an internal snapshot (use `vimg snapshot create`)')
            [CompletionResult]::new('--create', '--create', [CompletionResultType]::ParameterName, 'Not supported: make an internal snapshot (use `vimg snapshot create`)')
            [CompletionResult]::new('-a', '-a', [CompletionResultType]::ParameterName, 'Not supported: go back to an internal snapshot')
            [CompletionResult]::new('--apply', '--apply', [CompletionResultType]::ParameterName, 'Not supported: go back to an internal snapshot')
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'Not supported: delete an internal snapshot')
            [CompletionResult]::new('--delete', '--delete', [CompletionResultType]::ParameterName, 'Not supported: delete an internal snapshot')
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Image format (probed from the content when not given)')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Image format (probed from the content when not given)')
            [CompletionResult]::new('--object', '--object', [CompletionResultType]::ParameterName, 'Not supported: QEMU objects (secrets of encrypted images) have no use for VMDK and VHD, which are not encrypted')
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'List the internal snapshots of FILE (VMDK and VHD have none: the list is empty); the default')
            [CompletionResult]::new('--list', '--list', [CompletionResultType]::ParameterName, 'List the internal snapshots of FILE (VMDK and VHD have none: the list is empty); the default')
            [CompletionResult]::new('-U', '-U ', [CompletionResultType]::ParameterName, 'Read the image even while another process may be writing it')
            [CompletionResult]::new('--force-share', '--force-share', [CompletionResultType]::ParameterName, 'Read the image even while another process may be writing it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing')
            [CompletionResult]::new('--image-opts', '--image-opts', [CompletionResultType]::ParameterName, 'Not supported: vimg opens files by name, not QEMU image specifications (qemu-img''s --image-opts)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Make a new, empty delta over BASE (a VMware snapshot, a differencing VHD)')
            [CompletionResult]::new('commit', 'commit', [CompletionResultType]::ParameterValue, 'Write a delta''s data into its parent, then empty and relink the delta')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'Show a delta''s chain down to its base, and whether each link holds')
            [CompletionResult]::new('rebase', 'rebase', [CompletionResultType]::ParameterValue, 'Give a delta another parent (or none), keeping what it reads')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'vimg;snapshot;create' {
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Options of the delta''s format as key=value[,key=value...]; `-o help` lists them')
            [CompletionResult]::new('-t', '-t', [CompletionResultType]::ParameterName, 'When to flush the new image to disk: unsafe (never), writeback, none, writethrough or directsync (before it is moved into place). Without -t, only an image that replaces an existing file is flushed')
            [CompletionResult]::new('--cache', '--cache', [CompletionResultType]::ParameterName, 'When to flush the new image to disk: unsafe (never), writeback, none, writethrough or directsync (before it is moved into place). Without -t, only an image that replaces an existing file is flushed')
            [CompletionResult]::new('--target-cache', '--target-cache', [CompletionResultType]::ParameterName, 'When to flush the new image to disk: unsafe (never), writeback, none, writethrough or directsync (before it is moved into place). Without -t, only an image that replaces an existing file is flushed')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Replace the target if it exists')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'vimg;snapshot;commit' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Format of DELTA (probed from the content when not given)')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Format of DELTA (probed from the content when not given)')
            [CompletionResult]::new('-b', '-b', [CompletionResultType]::ParameterName, 'Commit into BASE, further down DELTA''s chain, instead of its parent: DELTA is then relinked to BASE, and the layers between no longer read what they did (delete them)')
            [CompletionResult]::new('--base', '--base', [CompletionResultType]::ParameterName, 'Commit into BASE, further down DELTA''s chain, instead of its parent: DELTA is then relinked to BASE, and the layers between no longer read what they did (delete them)')
            [CompletionResult]::new('-t', '-t', [CompletionResultType]::ParameterName, 'Cache mode (qemu-img''s -t): accepted for scripts; vimg''s in-place writes keep their crash-safe order whatever it says')
            [CompletionResult]::new('--cache', '--cache', [CompletionResultType]::ParameterName, 'Cache mode (qemu-img''s -t): accepted for scripts; vimg''s in-place writes keep their crash-safe order whatever it says')
            [CompletionResult]::new('-r', '-r', [CompletionResultType]::ParameterName, 'Move at most RATE bytes a second (10M, 1G; binary units), so that the commit does not starve a busy host')
            [CompletionResult]::new('--rate', '--rate', [CompletionResultType]::ParameterName, 'Move at most RATE bytes a second (10M, 1G; binary units), so that the commit does not starve a busy host')
            [CompletionResult]::new('--object', '--object', [CompletionResultType]::ParameterName, 'Not supported: QEMU objects (secrets of encrypted images) have no use for VMDK and VHD, which are not encrypted')
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'Keep DELTA''s data (do not empty it)')
            [CompletionResult]::new('--drop', '--drop', [CompletionResultType]::ParameterName, 'Keep DELTA''s data (do not empty it)')
            [CompletionResult]::new('--image-opts', '--image-opts', [CompletionResultType]::ParameterName, 'Not supported: vimg opens files by name, not QEMU image specifications (qemu-img''s --image-opts)')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Commit even though other deltas of the parent (which the commit invalidates) lie beside it')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Show a progress bar (only when stderr is a terminal)')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'Show a progress bar (only when stderr is a terminal)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'vimg;snapshot;list' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Image format (probed from the content when not given)')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Image format (probed from the content when not given)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output style')
            [CompletionResult]::new('--confine', '--confine', [CompletionResultType]::ParameterName, 'Open no file an image names (parents, extents) outside DIR, links resolved (for untrusted images, with -f)')
            [CompletionResult]::new('-U', '-U ', [CompletionResultType]::ParameterName, 'Read the images even while another process may be writing them')
            [CompletionResult]::new('--force-share', '--force-share', [CompletionResultType]::ParameterName, 'Read the images even while another process may be writing them')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing: the exit code says whether every link is valid')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing: the exit code says whether every link is valid')
            [CompletionResult]::new('--no-backing', '--no-backing', [CompletionResultType]::ParameterName, 'Refuse an image that has a parent (a delta or differencing disk)')
            [CompletionResult]::new('--ignore-parent-id', '--ignore-parent-id', [CompletionResultType]::ParameterName, 'Read through a parent whose ID (VMDK CID, VHD UUID) is not the one its delta recorded, for read-only recovery (`vimg rebase -u` fixes the link)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'vimg;snapshot;rebase' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Format of DELTA (probed from the content when not given)')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Format of DELTA (probed from the content when not given)')
            [CompletionResult]::new('-b', '-b', [CompletionResultType]::ParameterName, 'The new parent ("" for none); a relative path is relative to DELTA''s folder, as in qemu-img')
            [CompletionResult]::new('--backing', '--backing', [CompletionResultType]::ParameterName, 'The new parent ("" for none); a relative path is relative to DELTA''s folder, as in qemu-img')
            [CompletionResult]::new('-F', '-F ', [CompletionResultType]::ParameterName, 'Format of NEWBASE (probed when not given)')
            [CompletionResult]::new('--backing-format', '--backing-format', [CompletionResultType]::ParameterName, 'Format of NEWBASE (probed when not given)')
            [CompletionResult]::new('-t', '-t', [CompletionResultType]::ParameterName, 'Cache mode of DELTA (qemu-img''s -t): accepted for scripts; vimg''s in-place writes keep their crash-safe order whatever it says')
            [CompletionResult]::new('--cache', '--cache', [CompletionResultType]::ParameterName, 'Cache mode of DELTA (qemu-img''s -t): accepted for scripts; vimg''s in-place writes keep their crash-safe order whatever it says')
            [CompletionResult]::new('-T', '-T ', [CompletionResultType]::ParameterName, 'Cache mode of the parents (qemu-img''s -T): accepted; vimg reads through the page cache')
            [CompletionResult]::new('--backing-cache', '--backing-cache', [CompletionResultType]::ParameterName, 'Cache mode of the parents (qemu-img''s -T): accepted; vimg reads through the page cache')
            [CompletionResult]::new('--object', '--object', [CompletionResultType]::ParameterName, 'Not supported: QEMU objects (secrets of encrypted images) have no use for VMDK and VHD, which are not encrypted')
            [CompletionResult]::new('-u', '-u', [CompletionResultType]::ParameterName, 'Unsafe: rewrite the link only, copying nothing (the old parent need not be there)')
            [CompletionResult]::new('--backing-unsafe', '--backing-unsafe', [CompletionResultType]::ParameterName, 'Unsafe: rewrite the link only, copying nothing (the old parent need not be there)')
            [CompletionResult]::new('-U', '-U ', [CompletionResultType]::ParameterName, 'Read the old and new parents even while another process may be writing them')
            [CompletionResult]::new('--force-share', '--force-share', [CompletionResultType]::ParameterName, 'Read the old and new parents even while another process may be writing them')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Not supported: VMDK deltas and differencing VHDs hold no compressed data (as qemu-img says for them)')
            [CompletionResult]::new('--compress', '--compress', [CompletionResultType]::ParameterName, 'Not supported: VMDK deltas and differencing VHDs hold no compressed data (as qemu-img says for them)')
            [CompletionResult]::new('--image-opts', '--image-opts', [CompletionResultType]::ParameterName, 'Not supported: vimg opens files by name, not QEMU image specifications (qemu-img''s --image-opts)')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Show a progress bar (only when stderr is a terminal)')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'Show a progress bar (only when stderr is a terminal)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'vimg;snapshot;help' {
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Make a new, empty delta over BASE (a VMware snapshot, a differencing VHD)')
            [CompletionResult]::new('commit', 'commit', [CompletionResultType]::ParameterValue, 'Write a delta''s data into its parent, then empty and relink the delta')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'Show a delta''s chain down to its base, and whether each link holds')
            [CompletionResult]::new('rebase', 'rebase', [CompletionResultType]::ParameterValue, 'Give a delta another parent (or none), keeping what it reads')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'vimg;snapshot;help;create' {
            break
        }
        'vimg;snapshot;help;commit' {
            break
        }
        'vimg;snapshot;help;list' {
            break
        }
        'vimg;snapshot;help;rebase' {
            break
        }
        'vimg;snapshot;help;help' {
            break
        }
        'vimg;commit' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Format of DELTA (probed from the content when not given)')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Format of DELTA (probed from the content when not given)')
            [CompletionResult]::new('-b', '-b', [CompletionResultType]::ParameterName, 'Commit into BASE, further down DELTA''s chain, instead of its parent: DELTA is then relinked to BASE, and the layers between no longer read what they did (delete them)')
            [CompletionResult]::new('--base', '--base', [CompletionResultType]::ParameterName, 'Commit into BASE, further down DELTA''s chain, instead of its parent: DELTA is then relinked to BASE, and the layers between no longer read what they did (delete them)')
            [CompletionResult]::new('-t', '-t', [CompletionResultType]::ParameterName, 'Cache mode (qemu-img''s -t): accepted for scripts; vimg''s in-place writes keep their crash-safe order whatever it says')
            [CompletionResult]::new('--cache', '--cache', [CompletionResultType]::ParameterName, 'Cache mode (qemu-img''s -t): accepted for scripts; vimg''s in-place writes keep their crash-safe order whatever it says')
            [CompletionResult]::new('-r', '-r', [CompletionResultType]::ParameterName, 'Move at most RATE bytes a second (10M, 1G; binary units), so that the commit does not starve a busy host')
            [CompletionResult]::new('--rate', '--rate', [CompletionResultType]::ParameterName, 'Move at most RATE bytes a second (10M, 1G; binary units), so that the commit does not starve a busy host')
            [CompletionResult]::new('--object', '--object', [CompletionResultType]::ParameterName, 'Not supported: QEMU objects (secrets of encrypted images) have no use for VMDK and VHD, which are not encrypted')
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'Keep DELTA''s data (do not empty it)')
            [CompletionResult]::new('--drop', '--drop', [CompletionResultType]::ParameterName, 'Keep DELTA''s data (do not empty it)')
            [CompletionResult]::new('--image-opts', '--image-opts', [CompletionResultType]::ParameterName, 'Not supported: vimg opens files by name, not QEMU image specifications (qemu-img''s --image-opts)')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Commit even though other deltas of the parent (which the commit invalidates) lie beside it')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Show a progress bar (only when stderr is a terminal)')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'Show a progress bar (only when stderr is a terminal)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'vimg;rebase' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Format of DELTA (probed from the content when not given)')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Format of DELTA (probed from the content when not given)')
            [CompletionResult]::new('-b', '-b', [CompletionResultType]::ParameterName, 'The new parent ("" for none); a relative path is relative to DELTA''s folder, as in qemu-img')
            [CompletionResult]::new('--backing', '--backing', [CompletionResultType]::ParameterName, 'The new parent ("" for none); a relative path is relative to DELTA''s folder, as in qemu-img')
            [CompletionResult]::new('-F', '-F ', [CompletionResultType]::ParameterName, 'Format of NEWBASE (probed when not given)')
            [CompletionResult]::new('--backing-format', '--backing-format', [CompletionResultType]::ParameterName, 'Format of NEWBASE (probed when not given)')
            [CompletionResult]::new('-t', '-t', [CompletionResultType]::ParameterName, 'Cache mode of DELTA (qemu-img''s -t): accepted for scripts; vimg''s in-place writes keep their crash-safe order whatever it says')
            [CompletionResult]::new('--cache', '--cache', [CompletionResultType]::ParameterName, 'Cache mode of DELTA (qemu-img''s -t): accepted for scripts; vimg''s in-place writes keep their crash-safe order whatever it says')
            [CompletionResult]::new('-T', '-T ', [CompletionResultType]::ParameterName, 'Cache mode of the parents (qemu-img''s -T): accepted; vimg reads through the page cache')
            [CompletionResult]::new('--backing-cache', '--backing-cache', [CompletionResultType]::ParameterName, 'Cache mode of the parents (qemu-img''s -T): accepted; vimg reads through the page cache')
            [CompletionResult]::new('--object', '--object', [CompletionResultType]::ParameterName, 'Not supported: QEMU objects (secrets of encrypted images) have no use for VMDK and VHD, which are not encrypted')
            [CompletionResult]::new('-u', '-u', [CompletionResultType]::ParameterName, 'Unsafe: rewrite the link only, copying nothing (the old parent need not be there)')
            [CompletionResult]::new('--backing-unsafe', '--backing-unsafe', [CompletionResultType]::ParameterName, 'Unsafe: rewrite the link only, copying nothing (the old parent need not be there)')
            [CompletionResult]::new('-U', '-U ', [CompletionResultType]::ParameterName, 'Read the old and new parents even while another process may be writing them')
            [CompletionResult]::new('--force-share', '--force-share', [CompletionResultType]::ParameterName, 'Read the old and new parents even while another process may be writing them')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Not supported: VMDK deltas and differencing VHDs hold no compressed data (as qemu-img says for them)')
            [CompletionResult]::new('--compress', '--compress', [CompletionResultType]::ParameterName, 'Not supported: VMDK deltas and differencing VHDs hold no compressed data (as qemu-img says for them)')
            [CompletionResult]::new('--image-opts', '--image-opts', [CompletionResultType]::ParameterName, 'Not supported: vimg opens files by name, not QEMU image specifications (qemu-img''s --image-opts)')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Show a progress bar (only when stderr is a terminal)')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'Show a progress bar (only when stderr is a terminal)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'vimg;completions' {
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing (only whether SHELL is known: the exit code)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing (only whether SHELL is known: the exit code)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'vimg;help' {
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Create a new, empty disk image')
            [CompletionResult]::new('info', 'info', [CompletionResultType]::ParameterValue, 'Show an image''s format, virtual and allocated size, and format details')
            [CompletionResult]::new('convert', 'convert', [CompletionResultType]::ParameterValue, 'Convert a disk image to another format or subformat')
            [CompletionResult]::new('map', 'map', [CompletionResultType]::ParameterValue, 'Show which ranges of an image hold data, which read as zeros, at which depth of the backing chain, and where in which file they are')
            [CompletionResult]::new('check', 'check', [CompletionResultType]::ParameterValue, 'Check an image and its backing chain for inconsistencies; -r repairs')
            [CompletionResult]::new('compare', 'compare', [CompletionResultType]::ParameterValue, 'Compare what two images read, across formats and backing chains')
            [CompletionResult]::new('amend', 'amend', [CompletionResultType]::ParameterValue, 'Change in place what can change without moving data')
            [CompletionResult]::new('measure', 'measure', [CompletionResultType]::ParameterValue, 'Show the space a conversion into -O FMT needs')
            [CompletionResult]::new('compact', 'compact', [CompletionResultType]::ParameterValue, 'Give back the space of grains and blocks that hold only zeros')
            [CompletionResult]::new('resize', 'resize', [CompletionResultType]::ParameterValue, 'Change a disk''s size in place')
            [CompletionResult]::new('snapshot', 'snapshot', [CompletionResultType]::ParameterValue, 'Make and manage delta images (VMware snapshots, differencing VHDs)')
            [CompletionResult]::new('commit', 'commit', [CompletionResultType]::ParameterValue, 'Write a delta''s data into its parent (the same as `snapshot commit`)')
            [CompletionResult]::new('rebase', 'rebase', [CompletionResultType]::ParameterValue, 'Move a delta onto another parent (the same as `snapshot rebase`)')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print the shell completion script for SHELL')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'vimg;help;create' {
            break
        }
        'vimg;help;info' {
            break
        }
        'vimg;help;convert' {
            break
        }
        'vimg;help;map' {
            break
        }
        'vimg;help;check' {
            break
        }
        'vimg;help;compare' {
            break
        }
        'vimg;help;amend' {
            break
        }
        'vimg;help;measure' {
            break
        }
        'vimg;help;compact' {
            break
        }
        'vimg;help;resize' {
            break
        }
        'vimg;help;snapshot' {
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Make a new, empty delta over BASE (a VMware snapshot, a differencing VHD)')
            [CompletionResult]::new('commit', 'commit', [CompletionResultType]::ParameterValue, 'Write a delta''s data into its parent, then empty and relink the delta')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'Show a delta''s chain down to its base, and whether each link holds')
            [CompletionResult]::new('rebase', 'rebase', [CompletionResultType]::ParameterValue, 'Give a delta another parent (or none), keeping what it reads')
            break
        }
        'vimg;help;snapshot;create' {
            break
        }
        'vimg;help;snapshot;commit' {
            break
        }
        'vimg;help;snapshot;list' {
            break
        }
        'vimg;help;snapshot;rebase' {
            break
        }
        'vimg;help;commit' {
            break
        }
        'vimg;help;rebase' {
            break
        }
        'vimg;help;completions' {
            break
        }
        'vimg;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
