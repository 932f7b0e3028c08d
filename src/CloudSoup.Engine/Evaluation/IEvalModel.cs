using CloudSoup.Engine.Jobs;
using TorchSharp;

namespace CloudSoup.Engine.Evaluation;

/// <summary>
/// An architecture whose weights are replaced by each checkpoint under test: a built-in one (in process) or a
/// TorchScript module (in the sandbox process, Sandbox/SandboxedModel.cs).
/// </summary>
public interface IEvalModel : IDisposable
{
    string Name { get; }

    /// <summary>Overwrites every parameter and buffer by name; names missing on either side or wrong shapes are errors.</summary>
    void LoadWeights(IReadOnlyDictionary<string, torch.Tensor> weights, string source);

    /// <summary>Logits for a batch of inputs (gradients flow when the caller enables them).</summary>
    torch.Tensor Forward(torch.Tensor inputs);

    /// <summary>
    /// The diagonal Fisher of every trainable parameter (by checkpoint name) with the loaded weights, from per-example
    /// gradients over <paramref name="data"/> (FisherEstimator). The caller owns the tensors.
    /// </summary>
    Dictionary<string, torch.Tensor> ParameterFisher(EvalData data, FisherOptions options, IProgress<JobProgress>? progress, CancellationToken ct);

    /// <summary>
    /// Re-estimates every BatchNorm layer's running statistics on <paramref name="data"/> (at most
    /// <paramref name="maxExamples"/> examples) with the loaded weights, updates the model, and returns the new
    /// statistics by checkpoint name; null when the model has no BatchNorm.
    /// </summary>
    IReadOnlyDictionary<string, torch.Tensor>? ResetBatchNorm(EvalData data, int maxExamples, int batchSize);

    /// <summary>How <see cref="ResetBatchNorm"/> estimates: "exact" (population statistics) or a description of the approximation.</summary>
    string BatchNormResetMethod { get; }
}
