"""Speaker clustering: offline (whole file) and online (live stream)."""

from voiceflow.clustering.offline import OfflineClusteringConfig, cluster_embeddings
from voiceflow.clustering.online import OnlineClusterer, OnlineClusteringConfig

__all__ = ["OfflineClusteringConfig", "OnlineClusterer", "OnlineClusteringConfig", "cluster_embeddings"]
