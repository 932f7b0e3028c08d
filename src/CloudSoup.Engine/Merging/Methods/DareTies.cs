// dare_ties: the generalized task-arithmetic pipeline (Yu et al. 2023 drop-and-rescale, arXiv 2311.03099, then TIES sign consensus; docs/methods.md).
using CloudSoup.Control.Methods;

namespace CloudSoup.Engine.Merging.Methods;

public sealed class DareTies(IMaskProvider? masks = null) : TaskArithmeticFamily(TaskVectorMethods.DareTies, masks);
