// `cloudsoup download`: every file of a succeeded job into a folder. Each file is streamed into NAME.partial and
// renamed once its size (and its MD5, when the store keeps one) matches what the job lists, so a file under its
// own name is always complete. A .partial left by an interrupted run is resumed with a Range request; a file already
// in place with the listed size (and MD5) is kept.
using System.Security.Cryptography;
using CloudSoup.Cli.Commands;
using CloudSoup.Control.Errors;
using CloudSoup.Control.Jobs;

namespace CloudSoup.Cli.Download;

internal sealed class JobDownloader(IJobFileSource source)
{
    public const string PartialSuffix = ".partial";
    private const int BufferBytes = 1 << 20;

    public async Task<IReadOnlyList<DownloadedFile>> DownloadAsync(string jobId, string outDir, ConsoleProgress? progress, CancellationToken ct)
    {
        var files = await source.ListAsync(jobId, ct).ConfigureAwait(false);
        string root = Path.GetFullPath(outDir);
        // Every name and size is checked before the first byte is written: a listing that cannot be honoured writes nothing.
        var plan = files.Select(f => (File: f, Target: TargetPath(root, f), Size: f.Size ?? throw CloudSoupException.Missing($"job {jobId} lists {SafeText.Name(f.Name)}, but its blob")))
            .ToList();
        Directory.CreateDirectory(root);
        var done = new List<DownloadedFile>();
        foreach (var (file, target, size) in plan)
            done.Add(await DownloadOneAsync(jobId, file, target, size, progress, ct).ConfigureAwait(false));
        return done;
    }

    /// <summary>Where a listed file goes: under <paramref name="root"/>, whatever the source said (a name is never trusted to stay inside).</summary>
    private static string TargetPath(string root, RemoteFile file)
    {
        string path = Path.GetFullPath(Path.Combine(root, file.Name));
        if (!JobFiles.IsSafeName(file.Name) || !path.StartsWith(root.TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            throw new CloudSoupException(ErrorKind.InvalidCheckpoint, $"the job lists a file named {SafeText.Name(file.Name)}, which would not stay inside the output folder; nothing was downloaded");
        return path;
    }

    private async Task<DownloadedFile> DownloadOneAsync(string jobId, RemoteFile file, string target, long size, ConsoleProgress? progress, CancellationToken ct)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        if (File.Exists(target) && new FileInfo(target).Length == size && (file.Md5 is null || (await Md5OfAsync(target, ct).ConfigureAwait(false)).SequenceEqual(file.Md5)))
        {
            progress?.Report(file.Name, 1, $"{Bytes(size)}, already here");
            return new DownloadedFile(file.Name, target, size, 0, AlreadyPresent: true);
        }

        string partial = target + PartialSuffix;
        long have = File.Exists(partial) ? new FileInfo(partial).Length : 0;
        if (have > size) have = 0;   // not a prefix of this file: start over
        long resumedFrom = have;
        using var md5 = file.Md5 is null ? null : IncrementalHash.CreateHash(HashAlgorithmName.MD5);
        if (have < size)
        {
            using var read = await source.OpenAsync(jobId, file, have, ct).ConfigureAwait(false);
            if (read.Offset != have) have = resumedFrom = 0;   // the source sent the whole file (it changed, or ignored the range)
            progress?.Report(file.Name, (double)have / Math.Max(size, 1), have > 0 ? $"resuming at {Bytes(have)} of {Bytes(size)}" : Bytes(size));
            await using var output = new FileStream(partial, have == 0 ? FileMode.Create : FileMode.Open, FileAccess.ReadWrite, FileShare.None, BufferBytes, FileOptions.Asynchronous);
            if (md5 != null && have > 0) await HashPrefixAsync(output, have, md5, ct).ConfigureAwait(false);
            output.SetLength(have);
            output.Position = have;
            var buffer = new byte[BufferBytes];
            int n;
            while ((n = await read.Content.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
            {
                if (have + n > size)
                    throw new CloudSoupException(ErrorKind.Transient, $"{file.Name}: the download is longer than the {size} bytes the job lists; run the command again");
                await output.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                md5?.AppendData(buffer, 0, n);
                have += n;
                if (have < size) progress?.Report(file.Name, (double)have / size, Detail(have, size, resumedFrom));
            }
        }
        else if (md5 != null)
        {
            await using var existing = new FileStream(partial, FileMode.Open, FileAccess.Read, FileShare.Read, BufferBytes, FileOptions.Asynchronous);
            await HashPrefixAsync(existing, have, md5, ct).ConfigureAwait(false);
        }

        if (have != size)
            throw new CloudSoupException(ErrorKind.Transient, $"{file.Name}: received {have} of {size} bytes; run the command again to resume from {Path.GetFileName(partial)}");
        if (md5 != null && !md5.GetHashAndReset().SequenceEqual(file.Md5!))
        {
            File.Delete(partial);
            throw new CloudSoupException(ErrorKind.Transient, $"{file.Name}: the downloaded bytes do not match the MD5 the store keeps for it; the partial file was deleted, run the command again");
        }
        File.Move(partial, target, overwrite: true);
        progress?.Report(file.Name, 1, $"{Bytes(size)}{(resumedFrom > 0 ? $", resumed at {Bytes(resumedFrom)}" : "")}, size{(file.Md5 is null ? "" : " and MD5")} checked");
        return new DownloadedFile(file.Name, target, size, resumedFrom, AlreadyPresent: false);
    }

    private static async Task HashPrefixAsync(Stream stream, long length, IncrementalHash md5, CancellationToken ct)
    {
        stream.Position = 0;
        var buffer = new byte[BufferBytes];
        for (long left = length; left > 0;)
        {
            int n = await stream.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, left)), ct).ConfigureAwait(false);
            if (n == 0) throw new IOException($"a partial file ended before the {length} bytes it held a moment ago");
            md5.AppendData(buffer, 0, n);
            left -= n;
        }
    }

    private static async Task<byte[]> Md5OfAsync(string path, CancellationToken ct)
    {
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, BufferBytes, FileOptions.Asynchronous);
        return await MD5.HashDataAsync(stream, ct).ConfigureAwait(false);
    }

    private static string Detail(long have, long size, long resumedFrom) =>
        $"{Bytes(have)} of {Bytes(size)}{(resumedFrom > 0 ? $", resumed at {Bytes(resumedFrom)}" : "")}";

    /// <summary>Bytes for people: kB/MB/GB in powers of 1000, as the reports show them.</summary>
    public static string Bytes(long n) => n switch
    {
        < 1000 => $"{n} B",
        < 1_000_000 => $"{n / 1e3:0.0} kB",
        < 1_000_000_000 => $"{n / 1e6:0.0} MB",
        _ => $"{n / 1e9:0.00} GB",
    };
}
