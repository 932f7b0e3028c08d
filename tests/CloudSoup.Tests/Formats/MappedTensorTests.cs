// Local checkpoints are read through a private memory mapping (Formats/MappedTensors.cs): the tensors must hold
// the file's values, a write into one must never reach the file or a later read, and a tensor the mapping cannot
// serve (an offset that is not a multiple of its element size) must still be read correctly.
using System.Text;
using CloudSoup.Engine.Formats;
using CloudSoup.Engine.Storage;
using CloudSoup.Tests.Support;
using TorchSharp;

namespace CloudSoup.Tests.Formats;

public class MappedTensorTests
{
    [Fact]
    public async Task A_write_into_a_mapped_tensor_changes_neither_the_file_nor_a_later_read()
    {
        using var dir = new TempDir();
        var expected = new Dictionary<string, torch.Tensor>
        {
            ["w"] = torch.arange(0, 4096, dtype: torch.float32).reshape(64, 64),
            ["h"] = torch.arange(0, 10, dtype: torch.float16),
            ["b"] = torch.arange(0, 7, dtype: torch.bfloat16),
        };
        SafetensorsFiles.Write(dir["m.safetensors"], expected);
        var before = await File.ReadAllBytesAsync(dir["m.safetensors"]);
        await using var ckpt = await Checkpoint.OpenAsync(new LocalCheckpointStore(dir.Path), "m.safetensors", CancellationToken.None);
        foreach (var (name, t) in expected)
        {
            using (var first = await ckpt.ReadTensorAsync(name, CancellationToken.None))
            {
                Assert.Equal(t.dtype, first.dtype);
                Assert.True(t.equal(first).all().ToBoolean(), name);
                first.fill_(-1);   // copy-on-write: only this tensor's pages change
            }
            using var again = await ckpt.ReadTensorAsync(name, CancellationToken.None);
            Assert.True(t.equal(again).all().ToBoolean(), $"{name} changed after a write into an earlier read");
        }
        Assert.Equal(before, await File.ReadAllBytesAsync(dir["m.safetensors"]));
    }

    [Fact]
    public async Task A_tensor_at_an_offset_that_is_not_a_multiple_of_its_element_size_is_read_instead()
    {
        // A hand-made file whose header is not padded: the data starts at 8 + 55 = 63, so the float32 tensor is not
        // 4-byte aligned in the file and cannot be a view of a mapping of it.
        using var dir = new TempDir();
        var header = Encoding.UTF8.GetBytes("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}");
        Assert.NotEqual(0, (8 + header.Length) % 4);
        var values = new[] { 1.5f, -2.25f, 3.0f };
        using (var f = File.Create(dir["odd.safetensors"]))
        {
            f.Write(BitConverter.GetBytes((ulong)header.Length));
            f.Write(header);
            foreach (var v in values) f.Write(BitConverter.GetBytes(v));
        }
        await using var ckpt = await Checkpoint.OpenAsync(new LocalCheckpointStore(dir.Path), "odd.safetensors", CancellationToken.None);
        using var a = await ckpt.ReadTensorAsync("a", CancellationToken.None);
        Assert.Equal(values, a.data<float>().ToArray());
    }
}
