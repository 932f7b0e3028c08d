using CloudSoup.Control.Methods;
using TorchSharp;

namespace CloudSoup.Engine.Merging;

/// <summary>
/// One merge method's compute: a pure function from input tensors to the merged tensor. What the method is
/// called, which parameters it takes and which recipes it accepts is its <see cref="Signature"/>, declared in
/// the control plane (CloudSoup.Control/Methods) so intake validates recipes without TorchSharp.
/// </summary>
public interface IMergeMethod
{
    MethodSignature Signature { get; }

    string Name => Signature.Name;
    IReadOnlyList<ParameterSpec> Parameters => Signature.Parameters;
    BaseModelUse BaseModel => Signature.BaseModel;

    /// <summary>Merges one tensor. Runs under no_grad; must not dispose its inputs.</summary>
    torch.Tensor Merge(TensorMergeInput input);
}
