// ties: the generalized task-arithmetic pipeline (Yadav et al. 2023, arXiv 2306.01708, mergekit per-tensor form; docs/methods.md. normalize=true is the paper's dis-mean, normalize=false its dis-sum).
using CloudSoup.Control.Methods;

namespace CloudSoup.Engine.Merging.Methods;

public sealed class Ties(IMaskProvider? masks = null) : TaskArithmeticFamily(TaskVectorMethods.Ties, masks);
