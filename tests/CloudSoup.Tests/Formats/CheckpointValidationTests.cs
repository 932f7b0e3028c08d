using System.Text;
using CloudSoup.Control.Errors;
using CloudSoup.Engine.Formats;
using CloudSoup.Engine.Storage;
using CloudSoup.Tests.Support;
using TorchSharp;

namespace CloudSoup.Tests.Formats;

/// <summary>
/// Hostile and broken checkpoints: every one must be refused while opening (before any tensor byte is read)
/// with a one-line CloudSoupException of the right kind that names the file.
/// </summary>
public class CheckpointValidationTests
{
    /// <summary>Writes a safetensors file by hand: 8-byte length, the header text as given, then <paramref name="dataBytes"/> bytes.</summary>
    private static void WriteRaw(string path, string header, int dataBytes, ulong? claimedLength = null)
    {
        var json = Encoding.UTF8.GetBytes(header);
        using var f = File.Create(path);
        f.Write(BitConverter.GetBytes(claimedLength ?? (ulong)json.Length));
        f.Write(json);
        f.Write(new byte[dataBytes]);
    }

    private static async Task<CloudSoupException> OpenFails(TempDir dir, string reference, ErrorKind kind, params string[] mentions)
    {
        var e = await Assert.ThrowsAsync<CloudSoupException>(async () =>
        {
            await using var c = await Checkpoint.OpenAsync(new LocalCheckpointStore(dir.Path), reference, CancellationToken.None);
        });
        Assert.Equal(kind, e.Kind);
        Assert.DoesNotContain('\n', e.Message);
        foreach (var m in mentions) Assert.Contains(m, e.Message);
        return e;
    }

    private static async Task RawFails(string header, int dataBytes, params string[] mentions)
    {
        using var dir = new TempDir();
        WriteRaw(dir["m.safetensors"], header, dataBytes);
        await OpenFails(dir, "m.safetensors", ErrorKind.InvalidCheckpoint, ["m.safetensors", .. mentions]);
    }

    [Fact]
    public async Task A_valid_hand_written_file_opens_so_the_failures_below_are_about_their_one_defect()
    {
        using var dir = new TempDir();
        WriteRaw(dir["m.safetensors"], """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F16","shape":[2,1],"data_offsets":[8,12]}}""", 12);
        await using var c = await Checkpoint.OpenAsync(new LocalCheckpointStore(dir.Path), "m.safetensors", CancellationToken.None);
        Assert.Equal(["a", "b"], c.TensorNames);
        using var b = await c.ReadTensorAsync("b", CancellationToken.None);
        Assert.Equal(torch.ScalarType.Float16, b.dtype);
        Assert.Equal([2L, 1L], b.shape);
    }

    [Fact]
    public async Task Truncated_file_shorter_than_the_length_field()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir["m.safetensors"], [1, 2, 3]);
        await OpenFails(dir, "m.safetensors", ErrorKind.InvalidCheckpoint, "too short");
    }

    [Fact]
    public async Task Header_length_past_the_end_of_the_file()
    {
        using var dir = new TempDir();
        WriteRaw(dir["m.safetensors"], "{}", 0, claimedLength: 4096);
        // The claimed length is the file's first 8 bytes: described, never quoted (docs/security.md).
        var e = await OpenFails(dir, "m.safetensors", ErrorKind.InvalidCheckpoint, "truncated: the header length is more than the");
        Assert.DoesNotContain("4096", e.Message);
    }

    [Theory]
    [InlineData(ulong.MaxValue)]
    [InlineData(200_000_000UL)]
    [InlineData(0UL)]
    public async Task Huge_or_zero_header_length_is_refused_without_allocating_it(ulong claimed)
    {
        using var dir = new TempDir();
        WriteRaw(dir["m.safetensors"], "{}", 0, claimedLength: claimed);
        await OpenFails(dir, "m.safetensors", ErrorKind.InvalidCheckpoint, "header length");
    }

    [Fact]
    public Task Header_that_is_not_json() => RawFails("{\"a\": [1, 2", 0, "not valid JSON");

    [Theory]
    [InlineData("[1, 2, 3]")]
    [InlineData("\"text\"")]
    [InlineData("42")]
    public Task Header_that_is_not_an_object(string header) => RawFails(header, 0, "not a JSON object");

    [Fact]
    public Task Tensor_offsets_outside_the_data_buffer() =>
        RawFails("""{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}""", 8, "tensor 'a'", "outside");

    [Fact]
    public Task Offsets_with_end_before_begin() =>
        RawFails("""{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}""", 8, "tensor 'a'", "begin <= end");

    [Fact]
    public Task Overlapping_tensors() =>
        RawFails("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", 12, "'a'", "'b'", "overlap");

    [Fact]
    public Task Unknown_dtype() =>
        RawFails("""{"a":{"dtype":"Q4_K","shape":[2],"data_offsets":[0,8]}}""", 8, "tensor 'a'", "Q4_K");

    [Fact]
    public Task Shape_times_dtype_size_not_matching_the_offsets() =>
        RawFails("""{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", 8, "tensor 'a'", "needs 12 bytes", "span 8");

    [Fact]
    public Task Duplicate_keys() =>
        RawFails("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", 8, "'a' twice");

    [Fact]
    public Task Negative_shape() =>
        RawFails("""{"a":{"dtype":"F32","shape":[-2, -1],"data_offsets":[0,8]}}""", 8, "tensor 'a'", "non-negative");

    [Fact]
    public Task Fractional_shape() =>
        RawFails("""{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,8]}}""", 8, "tensor 'a'", "non-negative integers");

    [Fact]
    public Task Shape_whose_element_count_overflows() =>
        RawFails("""{"a":{"dtype":"F32","shape":[4294967296, 4294967296],"data_offsets":[0,8]}}""", 8, "tensor 'a'", "overflows");

    [Fact]
    public Task Shape_whose_byte_size_overflows() =>
        RawFails("""{"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,8]}}""", 8, "tensor 'a'", "overflows");

    [Fact]
    public Task Metadata_with_a_non_string_value() =>
        RawFails("""{"__metadata__":{"format":1}}""", 0, "__metadata__");

    [Fact]
    public Task Entry_without_data_offsets() =>
        RawFails("""{"a":{"dtype":"F32","shape":[2]}}""", 8, "tensor 'a'", "data_offsets");

    [Fact]
    public async Task Missing_model_file_or_folder()
    {
        using var dir = new TempDir();
        await OpenFails(dir, "nope.safetensors", ErrorKind.MissingInput, "nope.safetensors");
        Directory.CreateDirectory(dir["empty"]);
        await OpenFails(dir, "empty", ErrorKind.MissingInput, "empty", "not found");
    }

    [Fact]
    public async Task Raw_pickles_outside_torch_saves_zip_format_are_refused()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir["m.bin"], [0x80, 0x02]);
        await OpenFails(dir, "m.bin", ErrorKind.InvalidCheckpoint, "not a zip-format PyTorch checkpoint");
    }

    private static void WriteIndex(TempDir dir, string folder, string weightMapJson)
    {
        Directory.CreateDirectory(dir[folder]);
        File.WriteAllText(Path.Combine(dir[folder], SafetensorsLayout.IndexFileName), $$"""{"metadata":{"total_size":8},"weight_map":{{weightMapJson}}}""");
    }

    [Theory]
    [InlineData("../outside.safetensors")]
    [InlineData("/etc/passwd")]
    [InlineData("..")]
    [InlineData("sub\\\\x.safetensors")]
    public async Task Index_pointing_outside_the_folder(string file)
    {
        using var dir = new TempDir();
        SafetensorsFiles.Write(dir["outside.safetensors"], new Dictionary<string, torch.Tensor> { ["a"] = torch.ones(2) });
        WriteIndex(dir, "model", $$"""{"a": "{{file}}"}""");
        await OpenFails(dir, "model", ErrorKind.InvalidCheckpoint, "outside the checkpoint folder");
    }

    [Fact]
    public async Task Index_pointing_to_a_missing_shard()
    {
        using var dir = new TempDir();
        WriteIndex(dir, "model", """{"a": "model-00001-of-00002.safetensors"}""");
        await OpenFails(dir, "model", ErrorKind.MissingInput, "model-00001-of-00002.safetensors");
    }

    [Fact]
    public async Task Index_listing_a_tensor_its_shard_lacks()
    {
        using var dir = new TempDir();
        WriteIndex(dir, "model", """{"a": "s1.safetensors", "ghost": "s1.safetensors"}""");
        SafetensorsFiles.Write(dir["model/s1.safetensors"], new Dictionary<string, torch.Tensor> { ["a"] = torch.ones(2) });
        await OpenFails(dir, "model", ErrorKind.InvalidCheckpoint, "ghost");
    }

    [Theory]
    [InlineData("{not json")]
    [InlineData("""{"metadata":{}}""")]
    [InlineData("""{"weight_map":{"a": 3}}""")]
    [InlineData("[]")]
    public async Task Malformed_index(string text)
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["model"]);
        File.WriteAllText(dir["model/" + SafetensorsLayout.IndexFileName], text);
        await OpenFails(dir, "model", ErrorKind.InvalidCheckpoint, SafetensorsLayout.IndexFileName);
    }
}
